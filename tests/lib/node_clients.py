"""Install the Node clients (node-fetch, https-proxy-agent) once per build tree."""
import os, subprocess, fcntl

HERE = os.path.join(os.path.dirname(__file__), "..", "node")


def node_dir():
    """A directory with node_modules for tests/node/package.json; installed on first use."""
    d = os.environ.get("AIRLOCK_NODE_DIR") or os.path.join(os.path.dirname(os.environ.get("AIRLOCK_BIN", "/tmp/x")), "node-clients")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(os.path.join(d, "node_modules", "node-fetch", "package.json")) or \
           not os.path.exists(os.path.join(d, "node_modules", "https-proxy-agent", "package.json")) or \
           not os.path.exists(os.path.join(d, "node_modules", "playwright-core", "package.json")):
            with open(os.path.join(HERE, "package.json")) as src, open(os.path.join(d, "package.json"), "w") as dst:
                dst.write(src.read())
            p = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--no-package-lock", "--loglevel=error"],
                               cwd=d, capture_output=True, text=True, timeout=300)
            if p.returncode != 0:
                raise AssertionError(f"npm install of the Node test clients failed:\n{p.stdout}\n{p.stderr}")
    return d


def run(script, args, env_extra, timeout=60):
    d = node_dir()
    env = dict(os.environ, NODE_PATH=os.path.join(d, "node_modules"), **env_extra)
    return subprocess.run(["node", os.path.join(HERE, script)] + args, capture_output=True, text=True,
                          timeout=timeout, env=env)
