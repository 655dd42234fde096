"""Output files are written whole or not at all: a temp file beside the target, then a rename."""
import json
import os
from pathlib import Path


def write_atomically(path, data):
    """Write bytes or text to path; on any failure the temp file goes and the target is untouched."""
    path = Path(path)
    temp_path = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temp_path, "wb") as file:
            file.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(temp_path, path)
    except BaseException:
        temp_path.unlink(missing_ok=True)
        raise


def write_json_atomically(path, obj):
    """Write obj as indented JSON, whole or not at all."""
    write_atomically(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")
