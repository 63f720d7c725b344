from __future__ import annotations


def principal(request) -> dict:
    return {"principal": getattr(request, "principal", None)}
