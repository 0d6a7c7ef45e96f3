"""Deterministic identities: retried or repeated work maps to the same keys and ids."""

from __future__ import annotations

import hashlib
import uuid

from config.recipe import canonical_json

# A fixed namespace so the same facts always give the same UUIDs (uuid5).
_NAMESPACE = uuid.UUID("6f1d3c0e-5a0b-4c55-9a57-7265737472d1")


def stable_uuid(*parts: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, "\x1f".join(parts)))


def derivation_key(input_sha256: str, recipe_hash: str, weights: dict[str, str], software_version: str,
                   precision: str = "fp32") -> str:
    """The idempotency key of a master: same input, recipe, weights, software and compute precision
    → same master.

    `weights` maps each model the recipe may use to its weights' sha256. The models' precision
    changes pixels (a bf16 master differs from an fp32 one by ~55 dB), so it is a fact of the key;
    fp32, what every master was made in before precision was a choice, is left out so those
    masters keep their keys.
    """
    facts: dict[str, object] = {"input": input_sha256, "recipe": recipe_hash, "weights": weights,
                                "software": software_version}
    if precision != "fp32":
        facts["precision"] = precision
    return hashlib.sha256(canonical_json(facts).encode()).hexdigest()
