"""`sia zoo list`: the shipped SNN programs and their measured accuracy."""

import typer


def register(app: typer.Typer):
    zoo = typer.Typer(no_args_is_help=True, help="trained SNN programs shipped with sia")
    app.add_typer(zoo, name="zoo")

    @zoo.command("list")
    def list_cmd():
        """List zoo entries: accuracy at each T (golden simulator) vs the FP32 twin."""
        from sia.zoo import index
        entries = index()
        if not entries:
            print("zoo is empty")
        for name, e in sorted(entries.items()):
            acc = " ".join(f"T{t}={a:.4f}" for t, a in sorted(e.get("snn_acc", {}).items(),
                                                            key=lambda kv: int(kv[0])))
            print(f"{name:28s} {e.get('data', '?'):16s} fp32={e.get('fp32_acc', float('nan')):.4f} {acc}")
