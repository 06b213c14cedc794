"""orbi differential reference: python-jsonschema, draft 2020-12, format assertion on.

argv[1]: the directory of the canonical schema files. stdin: first line
{"frozen": {file_name: document}}, then one request per line {"profile", "file", "text"}.
stdout: one line per request {"valid", "parse_error", "errors": [{"path", "keyword", "value"}]}.
"""
import json, os, sys

import jsonschema, referencing, rfc3339_validator, rfc3987  # noqa: F401 (formats must be on)
from referencing.jsonschema import DRAFT202012

def registry(documents):
    resources = []
    for file_name, document in documents.items():
        resource = referencing.Resource.from_contents(document, default_specification=DRAFT202012)
        # Under its $id, and under its file name so the relative $ref resolves as written.
        resources.append((document["$id"], resource))
        resources.append((file_name, resource))
    return referencing.Registry().with_resources(resources)

def pointer(path):
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)

def main():
    directory = sys.argv[1]
    seed = {}
    for name in sorted(os.listdir(directory)):
        if name.endswith(".schema.json"):
            with open(os.path.join(directory, name), encoding="utf-8") as handle:
                seed[name] = json.load(handle)
    frozen = json.loads(sys.stdin.readline())["frozen"]
    profiles = {"seed": seed, "frozen": {**seed, **frozen}}
    validators = {}
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    for profile, documents in profiles.items():
        reg = registry(documents)
        for file_name, document in documents.items():
            validators[(profile, file_name)] = jsonschema.Draft202012Validator(
                document, registry=reg, format_checker=checker)
    out = sys.stdout
    for line in sys.stdin:
        request = json.loads(line)
        validator = validators[(request["profile"], request["file"])]
        try:
            instance = json.loads(request["text"])
        except ValueError as error:
            out.write(json.dumps({"valid": False, "parse_error": str(error), "errors": []}) + "\n")
            continue
        errors = []
        for error in validator.iter_errors(instance):
            value = error.instance if isinstance(error.instance, str) else None
            errors.append({"path": pointer(error.absolute_path), "keyword": error.validator,
                           "value": value})
        out.write(json.dumps({"valid": not errors, "parse_error": None, "errors": errors}) + "\n")
    out.flush()

main()
