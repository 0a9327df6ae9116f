#!/usr/bin/env python3
"""Checks that every #include goes down the layers of docs/architecture.md.

The layering table in docs/architecture.md (between the `layering-table` markers) lists each
folder and the folders directly below it that it may include; a folder may also include
itself and, through them, everything those may include. This script reads the quoted
#include lines of every C/C++ file in the table's folders, resolves each to a file of the
tree, and fails on an include that no row allows, on one that resolves to no file, on a
cycle in the table, and on a Mermaid picture on that page whose arrows differ from the table.

    python3 scripts/check_layering.py [--root DIR]

Exit status 0 when the tree follows the table, 1 with one line per problem otherwise.
"""

import argparse
import re
import sys
from pathlib import Path

ARCHITECTURE = Path("docs/architecture.md")
# Where an include that is not relative to the including file is looked up, in order: the
# library's private headers, then the public ones (the include paths the build sets).
INCLUDE_ROOTS = (Path("src"), Path("include"))
SOURCE_SUFFIXES = (".h", ".cc", ".cc.in")
INCLUDE_LINE = re.compile(r'^\s*#\s*include\s*"([^"]+)"')
FOLDER = re.compile(r"`([^`]+/)`")
MERMAID_NODE = re.compile(r'(\w+)\["([^"]+)"\]')
MERMAID_EDGE = re.compile(r"^\s*(\w+)(?:\[\"[^\"]*\"\])?\s*-->\s*(\w+)(?:\[\"[^\"]*\"\])?\s*$")


def between_markers(text, name):
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    if begin not in text or end not in text:
        raise ValueError(f"{ARCHITECTURE}: the markers {begin} and {end} are missing")
    return text.split(begin, 1)[1].split(end, 1)[0]


def parse_table(text):
    """folder -> the folders directly below it, from the table's first two columns."""
    below = {}
    for line in between_markers(text, "layering-table").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not FOLDER.fullmatch(cells[0]):
            continue  # the header row, the separator row, blank lines
        folder = FOLDER.fullmatch(cells[0]).group(1)
        if folder in below:
            raise ValueError(f"{ARCHITECTURE}: the layering table lists {folder} twice")
        below[folder] = FOLDER.findall(cells[1])
    if not below:
        raise ValueError(f"{ARCHITECTURE}: the layering table has no rows")
    for folder, targets in below.items():
        for target in targets:
            if target not in below:
                raise ValueError(f"{ARCHITECTURE}: row {folder} names {target}, which has no row")
    return below


def parse_mermaid(text):
    """The folders and arrows (includer, included) of the Mermaid picture."""
    block = between_markers(text, "layering-picture")
    names = {node: folder for node, folder in MERMAID_NODE.findall(block)}
    edges = set()
    for line in block.splitlines():
        match = MERMAID_EDGE.match(line)
        if match:
            upper, lower = match.groups()
            for node in (upper, lower):
                if node not in names:
                    raise ValueError(f"{ARCHITECTURE}: picture node {node} has no [\"folder/\"]")
            edges.add((names[upper], names[lower]))
    return set(names.values()), edges


def reachable(below):
    """folder -> every folder it may include (itself, its rows, theirs ...); fails on a cycle."""
    allowed = {}

    def visit(folder, path):
        if folder in path:
            cycle = " -> ".join(path[path.index(folder):] + [folder])
            raise ValueError(f"{ARCHITECTURE}: the layering table has a cycle: {cycle}")
        if folder not in allowed:
            result = {folder}
            for target in below[folder]:
                result |= visit(target, path + [folder])
            allowed[folder] = result
        return allowed[folder]

    for folder in below:
        visit(folder, [])
    return allowed


def folder_of(path, folders):
    """The deepest table folder that holds `path` (relative, posix), or None."""
    best = None
    for folder in folders:
        if path.startswith(folder) and (best is None or len(folder) > len(best)):
            best = folder
    return best


def resolve(root, including, written):
    for base in (including.parent, *INCLUDE_ROOTS):
        candidate = root / base / written
        if candidate.is_file():
            return candidate.resolve().relative_to(root.resolve()).as_posix()
    return None


def check(root):
    text = (root / ARCHITECTURE).read_text()
    below = parse_table(text)
    allowed = reachable(below)
    problems = []

    picture_folders, picture_edges = parse_mermaid(text)
    table_edges = {(folder, target) for folder, targets in below.items() for target in targets}
    for folder in sorted(set(below) ^ picture_folders):
        where = "the table" if folder in below else "the picture"
        problems.append(f"{ARCHITECTURE}: {folder} is only in {where}")
    for upper, lower in sorted(table_edges - picture_edges):
        problems.append(f"{ARCHITECTURE}: the picture lacks the table's arrow {upper} --> {lower}")
    for upper, lower in sorted(picture_edges - table_edges):
        problems.append(f"{ARCHITECTURE}: the picture's arrow {upper} --> {lower} is not in the table")

    for folder in sorted(below):
        directory = root / folder
        if not directory.is_dir():
            continue  # a layer the table reserves for code still to come
        for source in sorted(directory.rglob("*")):
            if not source.is_file() or not source.name.endswith(SOURCE_SUFFIXES):
                continue
            relative = source.relative_to(root)
            owner = folder_of(relative.as_posix(), below)
            for number, line in enumerate(source.read_text(errors="replace").splitlines(), 1):
                match = INCLUDE_LINE.match(line)
                if not match:
                    continue
                written = match.group(1)
                target = resolve(root, relative, written)
                where = f"{relative.as_posix()}:{number}"
                if target is None:
                    problems.append(f'{where}: #include "{written}" resolves to no file of the tree')
                    continue
                target_folder = folder_of(target, below)
                if target_folder is None:
                    problems.append(f'{where}: #include "{written}" ({target}) is in no layer')
                elif target_folder not in allowed[owner]:
                    problems.append(
                        f'{where}: #include "{written}" goes from {owner} up to {target_folder}; '
                        f"{owner} may include {', '.join(sorted(allowed[owner]))}")
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent,
                        help="the repository root (default: this script's checkout)")
    args = parser.parse_args()
    try:
        problems = check(args.root)
    except (OSError, ValueError) as error:
        print(f"check_layering: {error}", file=sys.stderr)
        return 1
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"check_layering: {len(problems)} problem(s); the layers are in {ARCHITECTURE}",
              file=sys.stderr)
        return 1
    print(f"check_layering: every #include follows the layering table of {ARCHITECTURE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
