"""JSON Schema files for consumers of the topics."""

from __future__ import annotations

import json
from pathlib import Path

from schemas.events import EVENT_MODELS, SCHEMA_VERSION


def export_json_schemas(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, model in EVENT_MODELS.items():
        path = out_dir / f"{name}.v{SCHEMA_VERSION}.schema.json"
        path.write_text(json.dumps(model.model_json_schema(), indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written
