"""Settings for the test suite: the production settings with a test key,
jobs run in-process unless a test asks for real RQ workers, and Redis on a
database number of the suite's own (see tests/conftest.py)."""
import os

os.environ.setdefault("SECRET_KEY", "posinv-test-key")

from config.settings import *  # noqa: E402,F403
from config.settings import REDIS_URL, RQ_QUEUE_NAMES  # noqa: E402

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# xdist workers get a Redis database each, counting down from the base.
_worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
_worker_index = int(_worker[2:]) if _worker.startswith("gw") and _worker[2:].isdigit() else 0
TEST_REDIS_DB = int(os.environ.get("POSINV_TEST_REDIS_DB", "15")) - _worker_index
TEST_REDIS_URL = ""
if REDIS_URL:
    _base = REDIS_URL.rsplit("/", 1)[0] if REDIS_URL.count("/") > 2 else REDIS_URL
    TEST_REDIS_URL = f"{_base}/{TEST_REDIS_DB}"
    RQ_QUEUES = {
        name: {"URL": TEST_REDIS_URL, "DEFAULT_TIMEOUT": 900} for name in RQ_QUEUE_NAMES
    }
    REDIS_URL = TEST_REDIS_URL
POSINV_JOBS_INLINE = True
# Every test client is 127.0.0.1: suites that send bad tokens on purpose must not
# trip the failed-token throttle; tests/reliability sets its own low limit.
POSINV_AUTH_FAILURES_PER_MINUTE = 100_000
