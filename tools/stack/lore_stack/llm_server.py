"""The `local` answer provider's model server: llama.cpp's OpenAI-compatible server
(`python -m llama_cpp.server`, from llama-cpp-python[server]) serving SmolLM2-135M-Instruct.

`scripts/build-llama.sh` (`make llm`) installs both: the server in its own venv
(`.cache/llama/venv`, outside the workspace so `uv sync --frozen` leaves it alone) and the GGUF in
`.cache/models/smollm2/model.gguf`. The stack starts one server like any other process; lore-query
reaches it only through its sidecar, as the Dapr HTTPEndpoint `lore-llm` (components/llm.yaml), so
`local` is the `openai` provider pointed at this server.

SmolLM2-135M is a demo model: tiny and weak (README, "Generation"). Lore decides "not found" by
its retrieval score gate and cites only what it retrieved, so a weak model cannot invent sources.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

from lore_stack.procs import Proc

ROOT = Path(__file__).resolve().parents[3]
VENV_PYTHON = ROOT / ".cache" / "llama" / "venv" / "bin" / "python"
MODEL_FILE = ROOT / ".cache" / "models" / "smollm2" / "model.gguf"
# The name the server answers to (`--model_alias`); lore-query sends it as LLM_MODEL. A single-model
# llama_cpp.server serves its default model for any other name too (llama-cpp-python 0.3.36
# llama_cpp/server/model.py:40), so a mismatch would not fail, only mislabel.
MODEL_ALIAS = "smollm2-135m-instruct"


@dataclass
class LlmServer:
    """One llama_cpp.server process on 127.0.0.1.

    Args:
        port: Listen port (components/llm.yaml's `baseUrl` names 8088, the `make run` default; a
            stack on other ports points the HTTPEndpoint at `base_url`).
        log: The server's log file.
        threads: Generation threads. Two is this machine's every core; the apps' own work then
            competes with generation, which is what a one-box deployment looks like.
        context: Context window in tokens (SmolLM2 was trained with 8k; 4k holds Lore's prompt of
            top-k chunks and a 400-token answer, at less memory).
    """

    port: int
    log: Path
    threads: int = 2
    context: int = 4096
    python: Path = VENV_PYTHON
    model: Path = MODEL_FILE
    alias: str = MODEL_ALIAS
    proc: Proc | None = field(default=None, init=False)

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL without `/v1` (what an HTTPEndpoint's `baseUrl` takes)."""
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        # Flags are llama_cpp.server's settings (llama_cpp/server/settings.py, ModelSettings and
        # ServerSettings): one flag per field.
        return [
            str(self.python),
            "-m",
            "llama_cpp.server",
            "--model",
            str(self.model),
            "--model_alias",
            self.alias,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--n_threads",
            str(self.threads),
            "--n_threads_batch",
            str(self.threads),
            "--n_ctx",
            str(self.context),
            # No --chat_format: with none given, the server formats chats with the template the
            # GGUF carries (SmolLM2's ChatML; llama_cpp/llama.py:519-560 in 0.3.36).
            "--verbose",
            "false",
        ]

    def start(self, timeout: float = 60.0) -> None:
        """Starts the server and waits until `/v1/models` lists the model."""
        for path, what in ((self.python, "the llama.cpp server"), (self.model, "the SmolLM2 model")):
            if not path.exists():
                raise FileNotFoundError(f"{what} is not installed ({path}); run `make llm`")
        self.proc = Proc("llm-server", self.command(), log=self.log, cwd=self.log.parent)
        self.proc.start()
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = "not started"
        while time.monotonic() < deadline:
            if not self.running():
                tail = self.proc.tail() if self.proc else ""
                raise RuntimeError(f"llm-server exited with {self.returncode()}:\n{tail}")
            try:
                response = httpx.get(f"{self.base_url}/v1/models", timeout=2)
                if response.status_code == 200 and self.alias in response.text:
                    return
                last = f"{response.status_code} {response.text[:200]}"
            except httpx.TransportError as exc:
                last = type(exc).__name__
            time.sleep(0.2)
        raise TimeoutError(f"llm-server not ready at {self.base_url}: {last}")

    def running(self) -> bool:
        return self.proc is not None and self.proc.running()

    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.returncode()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()


def point_endpoint(resources_dir: Path, name: str, base_url: str) -> None:
    """Sets the `spec.baseUrl` of the rendered HTTPEndpoint ``name`` in ``resources_dir``.

    Raises:
        LookupError: No rendered file declares that HTTPEndpoint.
    """
    for path in sorted(resources_dir.glob("*.yaml")):
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
        hits = [
            d for d in docs if d.get("kind") == "HTTPEndpoint" and d.get("metadata", {}).get("name") == name
        ]
        for doc in hits:
            doc["spec"]["baseUrl"] = base_url
        if hits:
            path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
            return
    raise LookupError(f"no HTTPEndpoint {name!r} in {resources_dir}")
