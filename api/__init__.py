"""The vid2mp3 HTTP API: an app factory wiring blueprints to the services of the container."""

from __future__ import annotations

from typing import Any, Mapping

from flask import Flask

from core.bootstrap import Container
from core.observability import configure_logging
from core.settings import Settings


def create_app(
    config: Mapping[str, Any] | None = None, container: Container | None = None
) -> Flask:
    """Build the app; `config` overrides settings (by field or variable name) for tests."""
    settings = container.settings if container else Settings.from_env(overrides=config)
    app = Flask(__name__, static_folder=None)  # no /static: every route is in the OpenAPI spec
    configure_logging(settings)
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_json_bytes,
        MAX_FORM_MEMORY_SIZE=settings.max_json_bytes,
        JSON_SORT_KEYS=False,
        API_TITLE="vid2mp3",
        API_VERSION=version(),
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        # /docs is served by api.web from the packaged Swagger UI, not from a CDN.
    )
    app.extensions["vid2mp3"] = container or Container(settings)

    from api import (
        api_keys,
        auth,
        cors,
        errors,
        events,
        items,
        jobs,
        meta,
        metrics,
        observability,
        openapi,
        tus,
        upload_links,
        users,
        webhooks,
    )

    app.json = errors.SafeJSONProvider(app)
    api = openapi.create_api(app)
    for module in (
        meta,
        auth,
        api_keys,
        users,
        items,
        jobs,
        events,
        tus,
        upload_links,
        webhooks,
        metrics,
    ):
        api.register_blueprint(module.blp)
    observability.install(app)
    errors.register(app)
    from api import web

    web.register(app)
    cors.enable(app, settings.cors_origins)
    from api.body_deadline import BodyDeadline

    app.wsgi_app = BodyDeadline(  # type: ignore[method-assign]
        app.wsgi_app, settings.body_timeout_seconds, settings.body_min_rate
    )
    if settings.trusted_proxies:
        from api.proxies import TrustedProxyFix

        app.wsgi_app = TrustedProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, settings.trusted_proxies, settings.proxy_networks
        )
    return app


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("vid2mp3")
    except PackageNotFoundError:
        return "0.0.0"
