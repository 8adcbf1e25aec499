"""Routes: /healthz (process up) and /readyz (dependencies usable)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from tenure import __version__
from tenure.deps import State
from tenure.kit.problems import problem_response
from tenure.monitor import service

router = APIRouter(tags=["system"])


@router.get("/healthz", summary="Liveness: the process answers")
def healthz() -> dict[str, str]:
    return {"status": "ok", "version": __version__}


@router.get("/readyz", summary="Readiness: database reachable and migrated, Redis up")
async def readyz(state: State) -> JSONResponse:
    result = await run_in_threadpool(service.readiness, state.engine, state.settings.redis_url)
    if result.ready:
        return JSONResponse({"status": "ready", "checks": result.checks})
    failing = ", ".join(
        f"{name}: {c.get('detail', 'fail')}"
        for name, c in result.checks.items()
        if c["status"] != "ok"
    )
    return problem_response(503, "Not ready", failing, type_slug="not-ready", checks=result.checks)
