"""gunicorn settings for the API (production and `make up`), from the environment."""
import os

bind = f"{os.environ.get('API_HOST', '127.0.0.1')}:{os.environ.get('API_PORT', '8080')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("API_THREADS", "4"))
timeout = int(os.environ.get("API_TIMEOUT", "300"))  # large uploads and downloads take time
graceful_timeout = 30
keepalive = 5
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# gunicorn >= 25 opens a control socket under $HOME by default; containers run read-only.
control_socket_disable = True
