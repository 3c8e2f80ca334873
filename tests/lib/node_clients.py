"""The Node clients (node-fetch, https-proxy-agent, playwright-core) the tests run: installed by
.ci/deps (npm ci, pinned by tests/node/package-lock.json), never at test time."""
import os, subprocess

HERE = os.path.join(os.path.dirname(__file__), "..", "node")
NEEDED = ("node-fetch", "https-proxy-agent", "playwright-core")


def node_dir():
    """The directory whose node_modules holds the clients (tests/node, or $AIRLOCK_NODE_DIR)."""
    d = os.environ.get("AIRLOCK_NODE_DIR") or HERE
    missing = [m for m in NEEDED if not os.path.exists(os.path.join(d, "node_modules", m, "package.json"))]
    if missing:
        raise AssertionError(f"the Node test clients {', '.join(missing)} are not installed in {d}/node_modules: "
                             "run bash .ci/deps (npm ci in tests/node)")
    return d


def run(script, args, env_extra, timeout=60):
    d = node_dir()
    env = dict(os.environ, NODE_PATH=os.path.join(d, "node_modules"), **env_extra)
    return subprocess.run(["node", os.path.join(HERE, script)] + args, capture_output=True, text=True,
                          timeout=timeout, env=env)
