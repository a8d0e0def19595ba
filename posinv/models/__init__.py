from .catalog import Article, Barcode, Location, Price, PriceGroup
from .ops import ApiToken, JobRun, Lease, ScheduleState
from .stock import ChangeFailure, Origin, StockChange, StockLevel, StockMove
from .suggestions import ReorderSuggestion

__all__ = [
    "ApiToken",
    "Article",
    "Barcode",
    "ChangeFailure",
    "JobRun",
    "Lease",
    "ScheduleState",
    "Location",
    "Origin",
    "Price",
    "PriceGroup",
    "ReorderSuggestion",
    "StockChange",
    "StockLevel",
    "StockMove",
]
