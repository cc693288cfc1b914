"""`sia zoo list`: the shipped SNN programs and their measured accuracy."""

import json

import typer

from sia.zoo import gap_points


def rows(entries: dict) -> list[dict]:
    """One summary per entry: SNN accuracy at T = 4 and 8 and the gaps to the FP32 twin
    (percentage points, None where not measured)."""
    out = []
    for name, e in sorted(entries.items()):
        snn, fp32 = e.get("snn_acc", {}), e.get("fp32_acc")
        r = {"name": name, "data": e.get("data", "?"), "fp32": fp32,
             "size_mb": e.get("size_mb"),
             # signed IF neurons: SIA builds with signed_count_bits > 0 only
             "backends": "golden + signed SIA" if e.get("neurons") == "signed" else "golden + SIA"}
        for t in (4, 8):
            a = snn.get(str(t))
            r[f"snn_t{t}"] = a
            r[f"gap_t{t}"] = None if a is None or fp32 is None else gap_points(a, fp32)
        out.append(r)
    return out


def register(app: typer.Typer):
    zoo = typer.Typer(no_args_is_help=True, help="trained SNN programs shipped with sia")
    app.add_typer(zoo, name="zoo")

    @zoo.command("list")
    def list_cmd(as_json: bool = typer.Option(False, "--json", help="print JSON instead")):
        """List zoo entries: SNN accuracy at T = 4 and 8 and the gap to the FP32 twin.

        Accuracies are the golden simulator's on the full test set, from each manifest."""
        from rich.console import Console
        from rich.table import Table

        from sia.zoo import ZOO_DIR, index
        entries = index()
        for e in entries.values():
            f = ZOO_DIR / e.get("file", "")
            e["size_mb"] = round(f.stat().st_size / 1e6, 2) if f.is_file() else None
        summary = rows(entries)
        if as_json:
            print(json.dumps(summary, indent=1))
            return
        if not summary:
            print("zoo is empty")
            return

        def pct(v, sign=False):
            return "-" if v is None else (f"{v:+.2f}" if sign else f"{100 * v:.2f}")

        t = Table("entry", "data", "FP32 %", "SNN T=4 %", "gap T=4", "SNN T=8 %", "gap T=8",
                  "runs on", "MB")
        for r in summary:
            t.add_row(r["name"], r["data"], pct(r["fp32"]), pct(r["snn_t4"]),
                      pct(r["gap_t4"], True), pct(r["snn_t8"]), pct(r["gap_t8"], True),
                      r["backends"], "-" if r["size_mb"] is None else f"{r['size_mb']:.2f}")
        Console(width=170).print(t)
        print(f"{len(summary)} entries; any command that takes a program takes an entry name "
              f"(checksum verified on load)")
