"""Business logic of the carts app: stores, the web stack and its
controller, order import, product links, Send/Get QOH."""
