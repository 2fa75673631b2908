"""Customer documents: type by content (magic bytes), size limit, storage outside the web root."""
from __future__ import annotations

import os
import re
import secrets
import unicodedata
import zipfile
from pathlib import Path
from typing import BinaryIO

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from app.extensions import db

MAX_MB_KEY = "document_max_mb"
DEFAULT_MAX_MB = 10
CHUNK = 64 * 1024
OOXML = {
    "word/": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xl/": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "ppt/": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}
ODF = {
    b"application/vnd.oasis.opendocument.text": "application/vnd.oasis.opendocument.text",
    b"application/vnd.oasis.opendocument.spreadsheet": "application/vnd.oasis.opendocument.spreadsheet",
}
MAGIC = [
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
]


class DocumentRefused(ValueError):
    """An upload that is not stored (German message)."""


def parse_max_mb(value: str | None) -> int:
    """The setting document_max_mb: a whole number of megabytes, 1 to 100."""
    text = (value or "").strip()
    if not text:
        return DEFAULT_MAX_MB
    if not text.isdigit() or not 1 <= int(text) <= 100:
        raise ValueError(_("Die Höchstgröße für Dokumente muss eine ganze Zahl von 1 bis 100 (MB) sein."))
    return int(text)


def max_bytes() -> int:
    from app.models import Setting

    value = db.session.scalar(select(Setting.value).where(Setting.key == MAX_MB_KEY))
    try:
        return parse_max_mb(value) * 1024 * 1024
    except ValueError:
        return DEFAULT_MAX_MB * 1024 * 1024


def storage_dir() -> Path:
    path = Path(current_app.config["INSTANCE_DIR"]) / "documents"
    path.mkdir(parents=True, exist_ok=True)
    return path


def document_path(stored_name: str) -> Path:
    if not re.fullmatch(r"[0-9a-f]{32,64}", stored_name or ""):
        raise FileNotFoundError(stored_name)
    return storage_dir() / stored_name


def _zip_type(path: Path) -> str | None:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if "mimetype" in names:
                return ODF.get(archive.read("mimetype").strip())
            if "[Content_Types].xml" not in names:
                return None
            for prefix, content_type in OOXML.items():
                if any(name.startswith(prefix) for name in names):
                    return content_type
    except (zipfile.BadZipFile, KeyError, OSError):
        return None
    return None


def _is_text(head: bytes) -> bool:
    if b"\x00" in head or head.lstrip()[:1] == b"<":  # binary, or markup a browser could render
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:  # a cut multi-byte character at the end is fine
        return exc.start >= len(head) - 3
    return True


def detect_type(path: Path) -> str | None:
    """The content type by the file's first bytes, or None for a type we do not keep."""
    with path.open("rb") as handle:
        head = handle.read(4096)
    for magic, content_type in MAGIC:
        if head.startswith(magic):
            return content_type
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"PK\x03\x04"):
        return _zip_type(path)
    if head and _is_text(head):
        return "text/plain"
    return None


def safe_filename(name: str | None) -> str:
    """The user's file name for the download header: no path, no control characters."""
    name = unicodedata.normalize("NFC", (name or "").replace("\\", "/").rsplit("/", 1)[-1])
    name = re.sub(r"[\x00-\x1f\x7f\"<>:|?*;]", "", name).strip(" .")
    return name[:255] or "dokument"


def store_upload(stream: BinaryIO, limit: int) -> tuple[str, int, str]:
    """Write the upload in chunks under a random name; (stored_name, size, content_type).
    Refused (nothing left on disk) when it is bigger than `limit` or of a type we do not keep."""
    stored_name = secrets.token_hex(16)
    path = storage_dir() / stored_name
    size = 0
    try:
        with path.open("xb") as out:
            while chunk := stream.read(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise DocumentRefused(_("Die Datei ist zu groß (höchstens %(mb)d MB).", mb=limit // (1024 * 1024)))
                out.write(chunk)
        if size == 0:
            raise DocumentRefused(_("Die Datei ist leer."))
        content_type = detect_type(path)
        if content_type is None:
            raise DocumentRefused(_("Dieser Dateityp wird nicht angenommen. Erlaubt sind PDF, Bilder (PNG, JPEG, GIF, "
                                    "WebP), Office-Dokumente (Word, Excel, PowerPoint, OpenDocument) und Text."))
    except BaseException:
        remove_file(stored_name)
        raise
    return stored_name, size, content_type


def remove_file(stored_name: str) -> None:
    try:
        os.remove(document_path(stored_name))
    except FileNotFoundError:
        pass


# A document's file goes when its row goes — whoever deletes it (the document list, a
# customer deleted with its documents, a merge) — and only once the delete is committed:
# a rolled-back delete keeps the file.
FILES_TO_REMOVE = "terminbuch_document_files_to_remove"


@event.listens_for(Session, "after_flush")
def _note_deleted_documents(session: Session, _flush_context) -> None:
    from app.models import Document

    names = [obj.stored_name for obj in session.deleted if isinstance(obj, Document) and obj.stored_name]
    if names:
        session.info.setdefault(FILES_TO_REMOVE, []).extend(names)


@event.listens_for(Session, "after_commit")
def _remove_deleted_files(session: Session) -> None:
    for stored_name in session.info.pop(FILES_TO_REMOVE, []):
        remove_file(stored_name)


@event.listens_for(Session, "after_soft_rollback")
def _keep_files_of_rolled_back_deletes(session: Session, previous_transaction) -> None:
    if previous_transaction.parent is None:
        session.info.pop(FILES_TO_REMOVE, None)
