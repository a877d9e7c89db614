"""gunicorn settings for the web role (`gunicorn -c shelfwise/gunicorn_conf.py shelfwise.wsgi`).

Overridable through the environment: WEB_CONCURRENCY (processes), WEB_THREADS, PORT,
WEB_TIMEOUT. Access logging is off: the app logs one JSON line per request itself.
"""

import multiprocessing
import os

bind = f"{os.environ.get('WEB_BIND', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"  # noqa: S104 - container port
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
threads = int(os.environ.get("WEB_THREADS", "1"))
worker_class = "gthread" if threads > 1 else "sync"
timeout = int(os.environ.get("WEB_TIMEOUT", "30"))
graceful_timeout = 30
keepalive = 5
# Recycle workers now and then so a slow leak cannot grow without bound.
max_requests = int(os.environ.get("WEB_MAX_REQUESTS", "20000"))
max_requests_jitter = max_requests // 10
accesslog = None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
proc_name = "shelfwise-web"
control_socket_disable = True
limit_request_line = 8190  # like nginx's 8k header buffers; longer request lines get 414
