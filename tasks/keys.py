"""Deterministic identities: retried or repeated work maps to the same keys and ids."""

from __future__ import annotations

import hashlib
import uuid

from config.recipe import canonical_json

# A fixed namespace so the same facts always give the same UUIDs (uuid5).
_NAMESPACE = uuid.UUID("6f1d3c0e-5a0b-4c55-9a57-7265737472d1")


def stable_uuid(*parts: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, "\x1f".join(parts)))


def derivation_key(input_sha256: str, recipe_hash: str, weights: dict[str, str], software_version: str) -> str:
    """The idempotency key of a master: same input, recipe, weights and software → same master.

    `weights` maps each model the recipe may use to its weights' sha256.
    """
    facts = {"input": input_sha256, "recipe": recipe_hash, "weights": weights, "software": software_version}
    return hashlib.sha256(canonical_json(facts).encode()).hexdigest()
