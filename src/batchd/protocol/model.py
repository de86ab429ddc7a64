"""botocore's service models, loaded once, and the HTTP routes they define."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from urllib.parse import unquote

from botocore.loaders import Loader
from botocore.model import OperationModel, ServiceModel

__all__ = ["Route", "Router", "batch_model", "router", "service_model"]


@functools.cache
def service_model(name: str) -> ServiceModel:
    loader = Loader()
    return ServiceModel(loader.load_service_model(name, "service-2"), service_name=name)


def batch_model() -> ServiceModel:
    return service_model("batch")


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    labels: tuple[str, ...]
    operation: OperationModel


class Router:
    """Finds the operation for (method, path) from the model's ``requestUri`` templates."""

    def __init__(self, model: ServiceModel) -> None:
        self._exact: dict[tuple[str, str], OperationModel] = {}
        self._templated: list[Route] = []
        self._paths: set[str] = set()
        for name in model.operation_names:
            op = model.operation_model(name)
            method, uri = op.http["method"], op.http["requestUri"].split("?")[0]
            self._paths.add(uri)
            if "{" not in uri:
                self._exact[(method, uri)] = op
                continue
            labels = tuple(re.findall(r"\{(\w+)\+?\}", uri))
            regex = re.sub(r"\{(\w+)\+\}", r"(?P<\1>.+)", uri)
            regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", regex)
            self._templated.append(Route(method, re.compile(f"^{regex}$"), labels, op))

    def match(self, method: str, raw_path: str) -> tuple[OperationModel, dict[str, str]] | None:
        op = self._exact.get((method, raw_path.rstrip("/") or "/"))
        if op is not None:
            return op, {}
        for route in self._templated:
            found = route.pattern.match(raw_path)
            if found and route.method == method:
                return route.operation, {k: unquote(v) for k, v in found.groupdict().items()}
        return None

    def path_exists(self, raw_path: str) -> bool:
        if raw_path in self._paths:
            return True
        return any(route.pattern.match(raw_path) for route in self._templated)


@functools.cache
def router() -> Router:
    return Router(batch_model())
