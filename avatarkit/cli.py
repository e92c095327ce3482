"""The ``avatarkit`` command.

``avatarkit demo``                 a real end-to-end job against the in-process emulator
``avatarkit emulator``             run the emulator in the foreground
``avatarkit say TEXT -o out.mp4``  produce a video (the service from the environment,
                                   or an in-process emulator with --emulator)

Errors print one line to stderr: exit 2 for bad input, 1 for service or
connection errors, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import anyio

from avatarkit._session import AvatarSession, Endpoints
from avatarkit.errors import AvatarError, ValidationError
from avatarkit.tta import events as ev

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
DEMO_TEXT = "你好，我是 avatarkit 的数字人。今天天气真不错！我们一起出去走走吧。"


def _print_result(args: argparse.Namespace, result: dict[str, Any], human: str) -> None:
    if getattr(args, "json", False):
        print(json.dumps(result, ensure_ascii=False))
    else:
        print(human)


@contextlib.asynccontextmanager
async def _session(args: argparse.Namespace) -> AsyncIterator[AvatarSession]:
    """A session against the in-process emulator (``--emulator``) or the environment's service."""
    if getattr(args, "emulator", False):
        from avatarkit.emulator import Emulator

        async with Emulator() as emu, emu.session() as av:
            yield av
    else:
        kwargs: dict[str, Any] = {}
        if getattr(args, "tta_url", None):
            kwargs["endpoints"] = Endpoints(tta=args.tta_url)
        async with AvatarSession.from_env(**kwargs) as av:
            yield av


async def _produce(
    av: AvatarSession,
    text: str,
    out: Path,
    *,
    role: str,
    codec: str,
    width: int | None,
    height: int | None,
    subtitles: bool,
) -> dict[str, Any]:
    video: dict[str, int] = {}
    if width:
        video["video_width"] = width
    if height:
        video["video_height"] = height
    if subtitles:
        video["subtitle_control"] = True
    started = time.monotonic()
    audio_bytes = frames = 0
    async with av.tta.open(role=role, codec=codec, video=video or None) as stream:
        async for event in stream.say(text):
            match event:
                case ev.AudioChunk(pcm=pcm):
                    audio_bytes += len(pcm)
                case ev.VideoChunk():
                    frames += 1
                case _:
                    pass
        produced = await stream.finish()
        saved = await produced.save(out)
        resolution = stream.resolution
    elapsed = time.monotonic() - started
    seconds = audio_bytes / 32_000
    return {
        "path": str(await anyio.Path(saved).resolve()),
        "bytes": (await anyio.Path(saved).stat()).st_size,
        "seconds": round(seconds, 3),
        "video_frames": frames,
        "resolution": list(resolution),
        "elapsed_s": round(elapsed, 3),
        "realtime_factor": round(seconds / elapsed, 2) if elapsed else None,
        "subtitles": [
            {"text": s.text, "start_ms": s.start_ms, "end_ms": s.end_ms} for s in produced.subtitles
        ],
    }


async def _cmd_say(args: argparse.Namespace) -> int:
    out = Path(args.output)
    async with _session(args) as av:
        result = await _produce(
            av,
            args.text,
            out,
            role=args.role,
            codec=args.codec,
            width=args.width,
            height=args.height,
            subtitles=args.subtitles,
        )
    _print_result(
        args,
        result,
        f"wrote {result['path']} ({result['seconds']} s of video, "
        f"{result['video_frames']} frames, {result['bytes']} bytes)",
    )
    return EXIT_OK


async def _cmd_demo(args: argparse.Namespace) -> int:
    from avatarkit.emulator import Emulator

    out = Path(args.output)
    async with Emulator() as emu:
        if not args.json:
            print(f"emulator running at {emu.http_url} (no account needed)")
        async with emu.session() as av:
            result = await _produce(
                av,
                args.text,
                out,
                role="GuoXiaoyuan",
                codec="mp4",
                width=args.width,
                height=None,
                subtitles=True,
            )
    _print_result(
        args,
        result,
        (
            f"produced {result['seconds']} s of "
            f"{result['resolution'][0]}x{result['resolution'][1]} "
            f"video ({result['video_frames']} frames, {result['realtime_factor']}x real time)\n"
            f"subtitles: {len(result['subtitles'])} lines\n"
            f"video: {result['path']}"
        ),
    )
    return EXIT_OK


def _cmd_emulator(args: argparse.Namespace) -> int:
    from avatarkit.emulator import EmulatorOptions, serve

    fields: dict[str, Any] = {"pace": args.pace, "media": args.media}
    for name in ("appid", "token", "frame_bytes", "audio_chunk_ms"):
        if getattr(args, name) is not None:
            fields[name] = getattr(args, name)
    options = EmulatorOptions(**fields)
    host = f"[{args.host}]" if ":" in args.host else args.host

    def announce(port: int) -> None:
        base = f"{host}:{port}"
        print(f"avatarkit emulator listening on http://{base} — point the SDK at it with:")
        print(f"  export AVATARKIT_APPID={options.appid}")
        print(f"  export AVATARKIT_TOKEN={options.token}")
        print(f"  export AVATARKIT_TTA_URL=ws://{base}/api/v1/volc_virtual_human/tta")
        print(f"  export AVATARKIT_DIGIME_URL=http://{base}/virtual_human/avatar_platform/digime")
        print(f"  export AVATARKIT_SAMI_URL=http://{base}/api/v1/invoke", flush=True)

    serve(args.host, args.port, options, log_level=args.log_level, on_ready=announce)
    return EXIT_OK


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="avatarkit", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="produce a video against the in-process emulator")
    demo.add_argument("-o", "--output", default="out.mp4")
    demo.add_argument("--text", default=DEMO_TEXT)
    demo.add_argument("--width", type=int, default=720, help="video width (default 720)")
    demo.add_argument("--json", action="store_true", help="print the result as JSON")

    say = sub.add_parser("say", help="produce a video of TEXT")
    say.add_argument("text")
    say.add_argument("-o", "--output", default="out.mp4")
    say.add_argument("--role", default="GuoXiaoyuan")
    say.add_argument("--codec", default="mp4", choices=["mp4", "webm", "mov"])
    say.add_argument("--width", type=int)
    say.add_argument("--height", type=int)
    say.add_argument("--subtitles", action="store_true", help="ask for subtitle events")
    say.add_argument(
        "--emulator",
        action="store_true",
        help="run against an in-process emulator instead of the real service",
    )
    say.add_argument(
        "--tta-url",
        help="TTA base URL (default: $AVATARKIT_TTA_URL or the real service); "
        "credentials come from AVATARKIT_APPID and AVATARKIT_TOKEN",
    )
    say.add_argument("--json", action="store_true", help="print the result as JSON")

    emu = sub.add_parser("emulator", help="run the local emulator in the foreground")
    emu.add_argument("--host", default="127.0.0.1")
    emu.add_argument("--port", type=int, default=8765)
    emu.add_argument("--pace", choices=["fast", "realtime"], default="realtime")
    emu.add_argument("--media", choices=["real", "cheap"], default="real")
    emu.add_argument(
        "--frame-bytes", type=int, help="cheap media: pad every video frame to N bytes"
    )
    emu.add_argument("--audio-chunk-ms", type=int, help="PCM per audio frame (default 40)")
    emu.add_argument("--appid")
    emu.add_argument("--token")
    emu.add_argument("--log-level", default="info")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "emulator":
            return _cmd_emulator(args)
        command = {"say": _cmd_say, "demo": _cmd_demo}[args.command]
        return anyio.run(command, args)
    except ValidationError as exc:
        print(f"avatarkit: invalid input: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except AvatarError as exc:
        print(f"avatarkit: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
