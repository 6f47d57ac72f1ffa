"""`tinyc cache info|clear|prune`: the compile cache's folder, size and cap."""

from __future__ import annotations

import argparse
import datetime
import json


def add_cache_command(sub) -> None:
    c = sub.add_parser("cache", help="show, prune or clear the compile cache")
    actions = c.add_subparsers(dest="action", required=True)
    info = actions.add_parser("info", help="the cache folder, its entries and size")
    info.add_argument("--json", action="store_true", help="print the result as JSON")
    clear = actions.add_parser("clear", help="remove every cached artifact")
    clear.add_argument("--json", action="store_true", help="print the result as JSON")
    prune = actions.add_parser("prune", help="remove least recently used entries down to a size")
    prune.add_argument("--max-size", metavar="SIZE",
                       help="e.g. 500MB (default: TINYC_CACHE_MAX_SIZE, else 2GB)")
    prune.add_argument("--json", action="store_true", help="print the result as JSON")
    c.set_defaults(func=cmd_cache)


def cmd_cache(args: argparse.Namespace) -> int:
    from . import cache_evict
    from .cache import cache_root

    root = cache_root()
    if args.action == "info":
        return _show(cache_evict.info(root), args.json)
    if root is None:
        return _done({"folder": None, "removed": 0, "bytes": 0,
                      "note": "the disk cache is off (TINYC_CACHE_DIR=off)"}, args.json)
    if args.action == "clear":
        gone = cache_evict.clear(root)
    else:
        limit = (cache_evict.parse_size(args.max_size) if args.max_size
                 else cache_evict.max_bytes())
        gone = cache_evict.prune(root, limit)
    return _done({"folder": str(root), "removed": len(gone),
                  "bytes": sum(e.bytes for e in gone)}, args.json)


def _show(info: dict, as_json: bool) -> int:
    if as_json:
        print(json.dumps(info, indent=1))
        return 0
    from .cache_evict import human

    if not info["enabled"]:
        print("the disk cache is off (TINYC_CACHE_DIR=off)")
        return 0
    print(f"folder   {info['folder']}")
    print(f"entries  {info['entries']}")
    print(f"size     {human(info['bytes'])} of {human(info['max_bytes'])}")
    if info["oldest_use"] is not None:
        print(f"used     {_when(info['oldest_use'])} .. {_when(info['newest_use'])}")
    return 0


def _done(result: dict, as_json: bool) -> int:
    from .cache_evict import human

    if as_json:
        print(json.dumps(result, indent=1))
    elif result["folder"] is None:
        print(result["note"])
    else:
        print(f"removed {result['removed']} entries ({human(result['bytes'])}) from "
              f"{result['folder']}")
    return 0


def _when(t: float) -> str:
    return datetime.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M")
