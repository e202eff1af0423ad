"""The ceiling for reads: one no-op JSON route on the service's own stack (FastAPI
under uvicorn with uvloop and httptools, the same worker count), and nothing else:
no middleware, no database, no authentication."""

from fastapi import FastAPI

app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


@app.get("/noop")
async def noop() -> dict[str, bool]:
    return {"ok": True}
