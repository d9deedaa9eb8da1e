"""Multimodal results in ChatAgent's shapes, from the plain records core keeps (a batch job's
results are shown both by /multimodal/batch-process and by /jobs/{id})."""

from typing import Any

from tertulia.faces.chatagent.errors import CODES, PREFIX
from tertulia.faces.chatagent.schemas import MediaFilePublic, MultimodalFailure, MultimodalResult

FILES_PATH = f"{PREFIX}/multimodal/files"


def file_url(file_id: str, name: str) -> str:
    return f"{FILES_PATH}/{file_id}/{name}"


def file_public(record: dict[str, Any]) -> MediaFilePublic:
    return MediaFilePublic(
        id=record["id"],
        name=record["name"],
        media_type=record["media_type"],
        size=record["size"],
        url=file_url(record["id"], record["name"]),
        metadata=record["metadata"],
        source_name=record["source_name"],
        created_at=record["created_at"],
        expires_at=record["expires_at"],
    )


def result_public(record: dict[str, Any]) -> MultimodalResult | MultimodalFailure:
    if not record["success"]:
        error = record["error"]
        status, code = CODES.get(error["kind"], (500, "INTERNAL_ERROR"))
        return MultimodalFailure(
            file_name=record["file_name"],
            error={"code": code, "status": status, "message": error["message"], "details": error["details"]},
        )
    files = [file_public(file) for file in record["files"]]
    return MultimodalResult(
        file_name=record["file_name"],
        media_type=record["media_type"],
        content=record["content"],
        metadata=record["metadata"],
        processed_files=[file.url for file in files],
        files=files,
        processing_time=record["processing_time"],
        delivered=record["delivery"],
    )


def batch_results(result: dict[str, Any] | None) -> list[MultimodalResult | MultimodalFailure]:
    return [result_public(record) for record in (result or {}).get("files", [])]
