"""One change to a nested document (JSON, YAML, CBOR values), for the fuzzing properties."""

from hypothesis import strategies as st

MUTATIONS = st.sampled_from(["delete", "duplicate", "retype", "garble"])


def mutate(doc: object, path: list, action: str, value: object) -> object:
    """`doc` with one change at the node `path` leads to: the entry deleted or duplicated, or
    the node replaced by `value` (retype/garble)."""
    if not path:
        return value if action in ("retype", "garble") else doc
    key, rest = path[0], path[1:]
    if isinstance(doc, dict) and doc:
        key = list(doc)[key % len(doc)]
        copy = dict(doc)
        if not rest and action == "delete":
            copy.pop(key)
        elif not rest and action == "duplicate":
            copy[f"{key}_copy"] = doc[key]
        else:
            copy[key] = mutate(doc[key], rest, action, value)
        return copy
    if isinstance(doc, list) and doc:
        copy = list(doc)
        if not rest and action == "delete":
            del copy[key % len(doc)]
        elif not rest and action == "duplicate":
            copy.insert(key % len(doc), doc[key % len(doc)])
        else:
            copy[key % len(doc)] = mutate(doc[key % len(doc)], rest, action, value)
        return copy
    return value
