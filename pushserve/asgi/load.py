"""Import the ASGI apps named by ``--mount PREFIX=MODULE:ATTR`` (uvicorn's notation).

``MODULE:ATTR`` names an app object; ``MODULE:FACTORY()`` names a function called once (no
arguments) to make it.  Whatever goes wrong while importing becomes a ConfigError of one line, so
a typo in a mount ends like any other configuration mistake: a readable message, exit 1.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from pushserve.config import Config, ConfigError


def import_paths(config: Config) -> list[str]:
    """Folders apps are imported from: --app-dir and the working directory first (uvicorn does
    the same), the site folder last so a mount in pushserve.toml (``_app.search:app``) resolves
    without letting the site's files shadow installed modules."""
    front = [str(p.resolve()) for p in (config.app_dir,) if p is not None]
    front.append(os.getcwd())
    return [*front, str(Path(config.site).resolve())]


def add_import_paths(config: Config) -> None:
    *front, site = import_paths(config)
    for path in reversed(front):  # reversed, so --app-dir ends up first of all
        if path not in sys.path:
            sys.path.insert(0, path)
    if site not in sys.path:
        sys.path.append(site)


def _where(exc: BaseException) -> str:
    """The innermost frame of an exception, as ``file:line`` for a one-line message."""
    frames = traceback.extract_tb(exc.__traceback__)
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{exc.filename}:{exc.lineno}"
    return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def import_apps(config: Config) -> list[Any]:
    """Every mounted app, in the order of ``config.mounts``; a broken one is a ConfigError."""
    add_import_paths(config)
    return [import_app(m.app, m.prefix) for m in config.mounts]


def import_app(spec: str, prefix: str) -> Any:
    """The object named by ``spec`` (``module:attr``, ``module:a.b`` or ``module:factory()``)."""
    module_name, _, attr = spec.partition(":")
    factory = attr.endswith("()")
    if factory:
        attr = attr[:-2]
    where = f"mount {prefix}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        # Only "our" module (or a package on its path) missing means a wrong name; a missing
        # dependency inside the app is the app's problem and is reported as such.
        if e.name is not None and (module_name == e.name or module_name.startswith(e.name + ".")):
            raise ConfigError(f"{where}: module {module_name!r} not found "
                              f"(looked in --app-dir, the working directory and the site folder)") from None
        raise ConfigError(f"{where}: importing {module_name!r} failed: {_describe(e)}") from None
    except Exception as e:  # the app's own code failed at import time
        raise ConfigError(f"{where}: importing {module_name!r} raised {_describe(e)} "
                          f"at {_where(e)}") from None
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError(f"{where}: module {module_name!r} has no attribute {attr!r}") from None
    if not callable(obj):
        raise ConfigError(f"{where}: {spec!r} is a {type(obj).__name__}, not an ASGI app (a callable)")
    if factory:
        try:
            obj = obj()
        except Exception as e:
            raise ConfigError(f"{where}: calling {module_name}:{attr}() raised {_describe(e)} "
                              f"at {_where(e)}") from None
        if not callable(obj):
            raise ConfigError(f"{where}: {module_name}:{attr}() returned a {type(obj).__name__}, "
                              f"not an ASGI app (a callable)")
    problem = not_asgi3(obj)
    if problem:
        raise ConfigError(f"{where}: {spec} is {problem}")
    return obj


_WSGI_NAMES = ("environ", "start_response")


def not_asgi3(app: Any) -> str | None:
    """Why ``app`` cannot be an ASGI 3 app, ``app(scope, receive, send)``, from its signature (None
    when it may be one).  Told by name at startup, rather than failing at the first request or
    looking like an app without lifespan support."""
    if inspect.isclass(app):
        # Calling a class makes an instance: ASGI 2's app(scope) -> instance(receive, send).
        return (f"a class ({app.__name__}): an ASGI 2 app, made per connection from the scope; mount an "
                "ASGI 3 callable app(scope, receive, send), e.g. asgiref.compatibility.guarantee_single_callable(...)")
    try:
        params = list(inspect.signature(app).parameters.values())
    except (TypeError, ValueError):
        return None  # a builtin or C callable: nothing to read, give it the benefit of the doubt
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return None
    names = tuple(p.name for p in positional[:2])
    if names == _WSGI_NAMES or (len(positional) == 2 and names[1] == "start_response"):
        return (f"a WSGI app ({type(app).__name__} taking environ, start_response), not ASGI; pushserve mounts "
                "ASGI 3 apps: wrap it (a2wsgi.WSGIMiddleware or asgiref.wsgi.WsgiToAsgi), or serve it with an "
                "ASGI framework")
    required = [p for p in positional if p.default is p.empty]
    if len(positional) < 3 or len(required) > 3:
        taking = ", ".join(p.name for p in positional) or "no arguments"
        return f"not an ASGI 3 app: it takes ({taking}), an ASGI 3 app takes (scope, receive, send)"
    return None
