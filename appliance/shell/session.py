"""One user's shell session: settings, finding objects by name or id, running jobs to their end."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from appliance.shell import output
from appliance.shell.api import ApiError, CommandError, WsApi
from appliance.shell.schema import ApiSchema
from appliance.shell.types import ObjectType

FINISHED = ("succeeded", "failed", "aborted")
POLL_SECONDS = 5.0  # one ?wait= round trip; also how fast an interrupt is noticed


@dataclass
class Settings:
    output_mode: str = "text"  # text | json
    wait: bool = True  # commands that start jobs wait for them


@dataclass
class Outcome:
    """What one command did: ``data`` for JSON output, ``text`` for people, or an ``error``."""

    status: int = 0
    data: Any = None
    text: str = ""
    error: CommandError | None = None
    exit: bool = False
    mode: str = "text"
    extra: dict[str, Any] = field(default_factory=dict)  # added to a JSON error (e.g. the failed job)

    def render(self) -> tuple[str, str]:
        """(stdout, stderr) text for this outcome in its output mode."""
        if self.error is not None:
            if self.mode == "json":
                return "", output.as_json({**self.error.as_json(), **self.extra})
            lines = [f"Error: {self.error.message}"] + (
                [f"Hint: {self.error.hint}"] if self.error.hint else []
            )
            return "", "\n".join(lines)
        if self.mode == "json":
            return ("" if self.data is None else output.as_json(self.data)), ""
        return self.text, ""


def segment(value: str) -> str:
    return quote(value, safe="")


class Session:
    def __init__(
        self,
        api: WsApi,
        *,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.api = api
        self.settings = Settings()
        self.progress = progress or (lambda _line: None)
        self.cancel = threading.Event()
        self.wait_override: bool | None = None  # a command's own wait=
        self._schema: ApiSchema | None = None

    # --- what the live manager offers ---

    @property
    def schema(self) -> ApiSchema:
        if self._schema is None:
            self._schema = ApiSchema(self.api.openapi())
        return self._schema

    @property
    def cached_schema(self) -> ApiSchema | None:
        """The schema if already fetched (completion must never wait for the network)."""
        return self._schema

    # --- finding objects ---

    def _find(self, t: ObjectType, key: str, value: str) -> list[dict[str, Any]]:
        if key == "id":
            try:
                return [self.api.get(f"{t.path}/{segment(value)}")]
            except ApiError as err:
                if err.status in (404, 400):
                    return []
                raise
        items: list[dict[str, Any]] = self.api.get(t.path, **{key: value, "limit": 1000})["items"]
        return items

    def resolve(self, t: ObjectType, key: str | None, value: str) -> dict[str, Any]:
        """The one object ``key=value`` names (a bare word: its id, name or other matching column)."""
        if key is None:
            keys = ("id", "name", *t.also_match) if t.named else ("id",)
            matches: dict[str, dict[str, Any]] = {}
            for k in keys:
                for obj in self._find(t, k, value):
                    matches.setdefault(str(obj["id"]), obj)
            found = list(matches.values())
            shown = value
        else:
            found = self._find(t, key, value)
            shown = f"{key}={value}"
        if not found:
            raise CommandError(
                f"no {t.name} matches {shown}", f"`list {t.name}` shows them", code="not_found"
            )
        if len(found) > 1:
            listed = "; ".join(f"id={o['id']} name={o.get('name', '-')}" for o in found)
            raise CommandError(
                f"{len(found)} {t.name} objects match {shown}: {listed}",
                "name exactly one with id=ID",
                code="ambiguous",
                usage=True,
            )
        return found[0]

    # --- jobs ---

    def job_outcome(self, job: dict[str, Any], wait: bool) -> Outcome:
        """Wait for ``job`` (unless told not to) and turn its end into an outcome."""
        job_id = job["id"]
        last = None
        while wait and job["state"] not in FINISHED:
            now = (job["state"], job.get("progress"))
            if now != last:
                self.progress(f"job {job_id} {job['state']} {job.get('progress') or 0}%: {job['summary']}")
                last = now
            if self.cancel.is_set():
                return Outcome(
                    status=1,
                    data=job,
                    error=CommandError(
                        f"stopped waiting for job {job_id}; it goes on ({job['state']})",
                        f"follow it with `show Job id={job_id}`",
                        code="interrupted",
                    ),
                    extra={"job": job},
                )
            job = self.api.request("GET", f"/jobs/{job_id}", wait=POLL_SECONDS)
        if job["state"] == "succeeded":
            lines = [f"Job {job_id} succeeded: {job['summary']}"]
            if job.get("result"):
                lines.append(output.record(job["result"]))
            return Outcome(data=job, text="\n".join(lines))
        if job["state"] in FINISHED:
            err = job.get("error") or {}
            return Outcome(
                status=1,
                data=job,
                error=CommandError(
                    f"job {job_id} {job['state']}: {err.get('message') or job['summary']}",
                    f"`show Job id={job_id}` has the details",
                    code=err.get("code") or job["state"],
                ),
                extra={"job": job},
            )
        return Outcome(
            data=job,
            text=f"Job {job_id} {job['state']}: {job['summary']} (follow it with `show Job id={job_id}`)",
        )

    def submit(self, method: str, path: str, body: Any = None, *, wait: bool | None = None) -> Outcome:
        """Call an endpoint that changes something; follow the job it answers with (if it is one)."""
        if wait is None:
            wait = self.settings.wait if self.wait_override is None else self.wait_override
        try:
            answer = self.api.request(method, path, json=body, wait=POLL_SECONDS if wait else 0)
        except ApiError as err:
            if err.status in (404, 405) and err.message in ("Not Found", "Method Not Allowed"):
                raise ApiError(
                    err.status,
                    "no_such_endpoint",
                    f"this manager does not offer {method} /api/v1{path.split('?')[0]} ({err.message})",
                    "upgrade the manager to a version that has it",
                ) from None
            raise
        if isinstance(answer, dict) and "state" in answer and "kind" in answer:
            return self.job_outcome(answer, wait)
        return Outcome(data=answer, text=output.record(answer) if isinstance(answer, dict) else str(answer))
