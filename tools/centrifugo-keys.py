#!/usr/bin/env python3
"""List every configuration key of Centrifugo v6 from its Go sources.

Usage: tools/centrifugo-keys.py <centrifugo git dir> [rev]

Reads the struct definitions in internal/config/config.go and
internal/configtypes/*.go (with `git show`, so a bare mirror works) and prints
one line per leaf key: `path<TAB>kind<TAB>default`. Arrays of objects appear
as `path[].field`; maps and free-form values are leaves. The output is the
input of src/config/keys.tsv (classes are Rotor's, added by hand).
"""
import re
import subprocess
import sys

FIELD = re.compile(r'^\s*(?:(\w+)\s+)?(\*?(?:\[\])?\*?[\w.]+(?:\[[\w.]+\][\w.]+)?)\s*`([^`]*)`')
TAG = re.compile(r'(\w+):"([^"]*)"')


def show(git, rev, path):
    return subprocess.run(["git", "--git-dir", git, "show", f"{rev}:{path}"],
                          check=True, capture_output=True, text=True).stdout


def parse(sources):
    structs, aliases = {}, {}
    for text in sources:
        lines = text.splitlines()
        i = 0
        while i < len(lines):
            m = re.match(r'^type (\w+) struct \{', lines[i])
            a = re.match(r'^type (\w+) (\[\]\w+|map\[\w+\]\w+|\w+)\s*$', lines[i])
            if a:
                aliases[a.group(1)] = a.group(2)
            if not m:
                i += 1
                continue
            name, fields = m.group(1), []
            i += 1
            while i < len(lines) and not lines[i].startswith('}'):
                f = FIELD.match(lines[i])
                if f and not lines[i].strip().startswith('//'):
                    tags = dict(TAG.findall(f.group(3)))
                    fields.append((f.group(1), f.group(2), tags))
                i += 1
            structs[name] = fields
    return structs, aliases


def kind_of(t):
    t = t.lstrip('*').split('.')[-1]
    return {'string': 'string', 'int': 'int', 'int64': 'int', 'int32': 'int', 'uint': 'int',
            'uint32': 'int', 'uint64': 'int', 'float64': 'float', 'bool': 'bool',
            'Duration': 'duration', 'PEMData': 'pem'}.get(t)


def walk(structs, aliases, sname, prefix, out):
    for name, typ, tags in structs[sname]:
        key = tags.get('json', '').split(',')[0]
        ms = tags.get('mapstructure', '')
        if key == '-' or ms == '-':
            continue
        base = typ.lstrip('*').split('.')[-1]
        if name is None or ms.startswith(',squash'):
            walk(structs, aliases, base, prefix, out)
            continue
        if not key:
            key = ms.split(',')[0]
        if not key:
            continue
        path = f'{prefix}{key}'
        default = tags.get('default', '')
        t = typ.lstrip('*')
        seen = set()
        while t.split('.')[-1] in aliases and t not in seen:
            seen.add(t)
            t = aliases[t.split('.')[-1]]
        if t.startswith('[]'):
            elem = t[2:].lstrip('*').split('.')[-1]
            if elem in structs:
                walk(structs, aliases, elem, f'{path}[].', out)
            else:
                out.append((path, 'list', default))
        elif t.startswith('map['):
            out.append((path, 'map', default))
        elif t.split('.')[-1] in structs:
            walk(structs, aliases, t.split('.')[-1], f'{path}.', out)
        else:
            out.append((path, kind_of(t) or 'json', default))


def main():
    git = sys.argv[1]
    rev = sys.argv[2] if len(sys.argv) > 2 else 'HEAD'
    files = subprocess.run(["git", "--git-dir", git, "ls-tree", "--name-only", rev,
                            "internal/configtypes/"], check=True, capture_output=True,
                           text=True).stdout.split()
    sources = [show(git, rev, f) for f in files if f.endswith('.go') and not f.endswith('_test.go')]
    sources.append(show(git, rev, 'internal/config/config.go'))
    structs, aliases = parse(sources)
    out = []
    walk(structs, aliases, 'Config', '', out)
    for path, kind, default in out:
        print(f'{path}\t{kind}\t{default}')


if __name__ == '__main__':
    main()
