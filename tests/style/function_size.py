#!/usr/bin/env python3
"""Function length over the product code: reports the median and 90th percentile of the lines
in function bodies and fails past the project's limits (short functions are a project standard).

It asks clang where each function's body starts and ends: the translation units of the build's
compile_commands.json are parsed with libclang (libclang1-14, called through ctypes, so the
python3-clang bindings are not needed). A body's length is the lines strictly between its braces
(at least 1: `int get() const { return fd_; }` counts 1). Functions in headers count once;
lambdas count as part of the function they are in.

usage: tests/style/function_size.py [BUILD_DIR] [--list N]   (BUILD_DIR default: build)
"""
import ctypes
import json
import multiprocessing
import os
import shlex
import statistics
import sys

PRODUCT_DIRS = ("base", "config", "gateway", "menu", "xen")
MAX_MEDIAN = 10
MAX_P90 = 25
LIBCLANG = "libclang-14.so.1"

# CXCursorKind values (clang-c/Index.h) of the declarations that can have a body.
FUNCTION_KINDS = {8, 21, 24, 25, 26, 30}  # function, method, ctor, dtor, conversion, template
COMPOUND_STMT = 202
CHILD_BREAK, CHILD_CONTINUE, CHILD_RECURSE = 0, 1, 2
PARSE_INCOMPLETE_OK = 0x200  # CXTranslationUnit_KeepGoing: an error must not hide functions


class Cursor(ctypes.Structure):
    _fields_ = [("kind", ctypes.c_int), ("xdata", ctypes.c_int), ("data", ctypes.c_void_p * 3)]


class Location(ctypes.Structure):
    _fields_ = [("ptr_data", ctypes.c_void_p * 2), ("int_data", ctypes.c_uint)]


class Range(ctypes.Structure):
    _fields_ = [("ptr_data", ctypes.c_void_p * 2), ("begin", ctypes.c_uint), ("end", ctypes.c_uint)]


class String(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("flags", ctypes.c_uint)]


VISITOR = ctypes.CFUNCTYPE(ctypes.c_int, Cursor, Cursor, ctypes.py_object)


def load_libclang():
    try:
        lib = ctypes.CDLL(LIBCLANG)
    except OSError as e:
        raise SystemExit(f"function size: {e}; install libclang1-14") from e
    signatures = {
        "clang_createIndex": ([ctypes.c_int, ctypes.c_int], ctypes.c_void_p),
        "clang_parseTranslationUnit": ([ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_char_p),
                                        ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint],
                                       ctypes.c_void_p),
        "clang_disposeTranslationUnit": ([ctypes.c_void_p], None),
        "clang_getTranslationUnitCursor": ([ctypes.c_void_p], Cursor),
        "clang_visitChildren": ([Cursor, VISITOR, ctypes.py_object], ctypes.c_uint),
        "clang_isCursorDefinition": ([Cursor], ctypes.c_uint),
        "clang_getCursorLocation": ([Cursor], Location),
        "clang_getCursorExtent": ([Cursor], Range),
        "clang_getRangeStart": ([Range], Location),
        "clang_getRangeEnd": ([Range], Location),
        "clang_getSpellingLocation": ([Location, ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_uint),
                                       ctypes.POINTER(ctypes.c_uint), ctypes.POINTER(ctypes.c_uint)], None),
        "clang_getFileName": ([ctypes.c_void_p], String),
        "clang_getCString": ([String], ctypes.c_char_p),
        "clang_disposeString": ([String], None),
    }
    for name, (args, result) in signatures.items():
        getattr(lib, name).argtypes = args
        getattr(lib, name).restype = result
    return lib


class Walker:
    """Collects (file, first line, body lines, ) for the function definitions of one unit."""

    def __init__(self, lib, root):
        self.lib = lib
        self.root = root
        self.names = {}  # CXFile pointer -> project-relative path, or None outside the product
        self.found = {}
        self.visit = VISITOR(lambda cursor, _parent, _data: self.on_cursor(cursor))

    def where(self, location):
        file, line = ctypes.c_void_p(), ctypes.c_uint()
        self.lib.clang_getSpellingLocation(location, ctypes.byref(file), ctypes.byref(line), None, None)
        if file.value not in self.names:
            self.names[file.value] = self.product_path(file) if file.value else None
        return self.names[file.value], line.value

    def product_path(self, file):
        name = self.lib.clang_getFileName(file)
        path = os.path.realpath(self.lib.clang_getCString(name).decode())
        self.lib.clang_disposeString(name)
        rel = os.path.relpath(path, self.root)
        return rel if rel.split(os.sep)[0] in PRODUCT_DIRS else None

    def on_cursor(self, cursor):
        path, line = self.where(self.lib.clang_getCursorLocation(cursor))
        if path is None:
            return CHILD_CONTINUE  # the standard library, libssh, ...: not ours to measure
        if cursor.kind in FUNCTION_KINDS and self.lib.clang_isCursorDefinition(cursor):
            self.lib.clang_visitChildren(cursor, VISITOR(lambda c, _p, _d: self.on_body(c, path, line)), None)
            return CHILD_CONTINUE
        return CHILD_RECURSE

    def on_body(self, cursor, path, line):
        if cursor.kind != COMPOUND_STMT:
            return CHILD_CONTINUE
        extent = self.lib.clang_getCursorExtent(cursor)
        _, first = self.where(self.lib.clang_getRangeStart(extent))
        _, last = self.where(self.lib.clang_getRangeEnd(extent))
        self.found[(path, line)] = max(1, last - first - 1)
        return CHILD_BREAK


def compiler_args(entry):
    """The compile command's arguments that matter to parsing (no output, no dependency files)."""
    words = entry["arguments"] if "arguments" in entry else shlex.split(entry["command"])
    while words and not words[0].startswith("-"):
        words = words[1:]  # the compiler (and a ccache in front of it)
    args, skip = [], False
    for word in words:
        if skip:
            skip = False
        elif word in ("-o", "-MQ", "-MF", "-MT"):
            skip = True
        elif word not in ("-c", "-MD", "-MMD") and word != entry["file"]:
            args.append(word)
    return args


def measure_unit(entry, root):
    lib = load_libclang()
    os.chdir(entry["directory"])  # the command's relative -I paths are relative to it
    args = [a.encode() for a in compiler_args(entry)]
    index = lib.clang_createIndex(0, 0)
    unit = lib.clang_parseTranslationUnit(index, entry["file"].encode(), (ctypes.c_char_p * len(args))(*args),
                                          len(args), None, 0, PARSE_INCOMPLETE_OK)
    if not unit:
        raise RuntimeError(f"libclang could not parse {entry['file']}")
    walker = Walker(lib, root)
    lib.clang_visitChildren(lib.clang_getTranslationUnitCursor(unit), walker.visit, None)
    lib.clang_disposeTranslationUnit(unit)
    return walker.found


def product_units(build, root):
    with open(os.path.join(build, "compile_commands.json")) as f:
        entries = json.load(f)
    for entry in entries:
        path = os.path.realpath(os.path.join(entry["directory"], entry["file"]))
        if os.path.relpath(path, root).split(os.sep)[0] in PRODUCT_DIRS:
            yield entry


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main(argv):
    root = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", ".."))
    build = os.path.realpath(next((a for a in argv if not a.startswith("--") and not a.isdigit()), "build"))
    listed = int(argv[argv.index("--list") + 1]) if "--list" in argv else 0
    units = list(product_units(build, root))
    with multiprocessing.Pool(min(2, os.cpu_count() or 1)) as pool:
        results = pool.starmap(measure_unit, [(u, root) for u in units])
    functions = {}
    for found in results:
        functions.update(found)
    lengths = list(functions.values())
    median, p90 = statistics.median(lengths), percentile(lengths, 0.9)
    for (path, line), length in sorted(functions.items(), key=lambda kv: -kv[1])[:listed]:
        print(f"  {length:4} {path}:{line}")
    print(f"function size: {len(lengths)} functions in {len(units)} units; body lines median {median}, "
          f"p90 {p90}, max {max(lengths)} (limits: median {MAX_MEDIAN}, p90 {MAX_P90})")
    if median > MAX_MEDIAN or p90 > MAX_P90:
        print("function size: over the limit; split the longest functions (--list 20 shows them)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
