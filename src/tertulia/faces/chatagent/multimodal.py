"""ChatAgent /multimodal: process a file (or a batch, as a job), the formats and capabilities
this server has, and the files processing made (downloadable by their owner for a while)."""

import json
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, File, Form, Response, UploadFile, status
from pydantic import ValidationError

from tertulia.core.errors import Invalid, NotFound, PayloadTooLarge
from tertulia.core.media import Destinations, MediaOptions, MediaUpload
from tertulia.core.media import files as media_files
from tertulia.core.media.service import file_record
from tertulia.faces.chatagent.bots import Limit, Offset
from tertulia.faces.chatagent.deps import CurrentPrincipal
from tertulia.faces.chatagent.knowledge import job_public
from tertulia.faces.chatagent.media_public import batch_results, file_public, result_public
from tertulia.faces.chatagent.schemas import (
    Done,
    MediaFilePublic,
    MediaFilesPublic,
    MultimodalBatch,
    MultimodalFailure,
    MultimodalFormats,
    MultimodalOptions,
    MultimodalResult,
)
from tertulia.faces.deps import RuntimeDep, SessionDep
from tertulia.faces.errors import validation_details
from tertulia.faces.inputs import clean
from tertulia.runtime import Runtime

router = APIRouter(prefix="/multimodal", tags=["multimodal"])

OptionsField = Annotated[
    str | None,
    Form(description="A JSON object: extract_text, transcribe, detect_faces, resize, compress …"),
]


def _options(raw: str | None) -> tuple[MediaOptions, Destinations]:
    if raw is None or not raw.strip():
        body = MultimodalOptions()
    else:
        try:
            value = json.loads(raw)
        except ValueError as error:
            raise Invalid("options must be a JSON object", {"field": "options"}) from error
        if not isinstance(value, dict):
            raise Invalid("options must be a JSON object", {"field": "options"})
        try:
            body = MultimodalOptions.model_validate(value)
        except ValidationError as error:
            problems = validation_details(error.errors())
            first = problems[0]
            raise Invalid(
                "options are not valid",
                {"field": f"options.{first['field']}", "reason": first["reason"], "errors": problems},
            ) from None
    options = MediaOptions(
        extract_text=body.extract_text,
        extract_images=body.extract_images,
        extract_audio=body.extract_audio,
        transcribe=body.transcribe,
        detect_faces=body.detect_faces,
        resize=body.resize,
        compress=body.compress,
        quality=body.quality,
        format=body.format.lower() if body.format else None,
        thumbnail=body.thumbnail,
        ocr_languages=tuple(body.ocr_languages) if body.ocr_languages is not None else None,
        language=body.language,
        max_frames=body.max_frames,
    )
    return options, Destinations(body.conversation_id, body.message_role, body.knowledge_base_id)


async def _upload(file: UploadFile, runtime: Runtime) -> MediaUpload:
    limit = runtime.settings.max_upload_bytes
    name = clean(file.filename or "", "file") or "upload"
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(
            f"{name!r} is larger than the limit of {limit} bytes", {"field": "file", "limit": limit}
        )
    return MediaUpload(name, data, file.content_type)


@router.post("/process")
async def process_file(
    principal: CurrentPrincipal,
    session: SessionDep,
    runtime: RuntimeDep,
    file: Annotated[UploadFile, File(description="An image, audio, video, document or spreadsheet")],
    options: OptionsField = None,
) -> MultimodalResult:
    media_options, destinations = _options(options)
    upload = await _upload(file, runtime)
    record = await runtime.media.process(
        session, principal, upload, media_options, destinations, runtime.jobs
    )
    result = result_public(record)
    assert isinstance(result, MultimodalResult)
    return result


@router.post(
    "/batch-process",
    responses={status.HTTP_202_ACCEPTED: {"description": "Still running: poll the job at /jobs/{id}"}},
)
async def batch_process(
    principal: CurrentPrincipal,
    session: SessionDep,
    runtime: RuntimeDep,
    response: Response,
    files: Annotated[list[UploadFile], File(description="The files, each read as /process reads one")],
    options: OptionsField = None,
) -> MultimodalBatch:
    """Runs as a job (the in-process runner or Celery workers): answered 200 with every
    result once the job is done, or 202 with the results so far when it is still running
    after media_batch_wait_seconds; GET /jobs/{id} then shows its progress and results."""
    media_options, destinations = _options(options)
    uploads = [await _upload(file, runtime) for file in files]
    job = await runtime.media.queue_batch(
        session, principal, uploads, media_options, destinations, runtime.jobs
    )
    job = await runtime.media.wait_for_batch(
        session, principal, job, runtime.settings.media_batch_wait_seconds
    )
    results = batch_results(job.result)
    failed = sum(1 for result in results if isinstance(result, MultimodalFailure))
    if job.status not in ("done", "failed"):
        response.status_code = status.HTTP_202_ACCEPTED
    return MultimodalBatch(
        success=job.status == "done" and failed == 0,
        status=job.status,
        total=len(uploads),
        succeeded=len(results) - failed,
        failed=failed,
        results=results,
        job=job_public(job),
    )


@router.get("/formats")
async def get_formats(principal: CurrentPrincipal, runtime: RuntimeDep) -> MultimodalFormats:
    settings = runtime.settings
    tools = runtime.media.processor.tools
    return MultimodalFormats(
        formats=tools.formats(),
        capabilities=tools.capabilities(),
        limits={
            "max_file_bytes": settings.max_upload_bytes,
            "max_pixels": settings.media_max_pixels,
            "max_duration_seconds": settings.media_max_duration_seconds,
            "max_pages": settings.media_max_pages,
            "max_frames": settings.media_max_frames,
            "max_batch_files": settings.media_batch_max_files,
            "file_retention_seconds": settings.media_file_retention_seconds,
        },
    )


@router.get("/files")
async def list_files(
    principal: CurrentPrincipal, session: SessionDep, limit: Limit = 20, offset: Offset = 0
) -> MediaFilesPublic:
    page = await media_files.list_files(session, principal, limit, offset)
    return MediaFilesPublic(
        files=[file_public(file_record(row)) for row in page.items],
        total=page.total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/files/{file_id}")
async def get_file(file_id: str, principal: CurrentPrincipal, session: SessionDep) -> MediaFilePublic:
    return file_public(file_record(await media_files.get_file(session, principal, file_id)))


@router.get(
    "/files/{file_id}/{name}",
    response_class=Response,
    responses={status.HTTP_200_OK: {"content": {"application/octet-stream": {}}, "description": "The file"}},
)
async def download_file(
    file_id: str, name: str, principal: CurrentPrincipal, session: SessionDep
) -> Response:
    row, data = await media_files.read_file(session, principal, file_id)
    if row.name != name:
        raise NotFound(media_files.MISSING)
    headers: dict[str, Any] = {
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(row.name)}",
        "Cache-Control": "private, no-store",
    }
    return Response(data, media_type=row.media_type, headers=headers)


@router.delete("/files/{file_id}")
async def delete_file(file_id: str, principal: CurrentPrincipal, session: SessionDep) -> Done:
    await media_files.delete_file(session, principal, file_id)
    return Done(message="File deleted")
