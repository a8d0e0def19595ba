"""Services of the pos app: receipts, entries, applying and transferring."""
