// Starts a Parley agent program with the standard flags and waits for the URL its log gives
// ("open http://HOST:PORT/"). Returns { base, proc, exited, log() }.
import { spawn } from "node:child_process";

export async function startAgent(path, args) {
  const proc = spawn(path, ["--port", "0", "--db", "", "--log-level", "info", ...args],
                     { stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  const exited = new Promise((resolve) => proc.on("exit", (code, signal) => resolve({ code, signal })));
  const base = await Promise.race([
    new Promise((resolve) => {
      const onData = (d) => { log += d; const m = /open (https?:\/\/\S+)/.exec(log); if (m) resolve(m[1]); };
      proc.stderr.on("data", onData);
      proc.stdout.on("data", onData);
    }),
    exited.then((e) => { throw new Error("the agent exited (" + JSON.stringify(e) + "):\n" + log); }),
  ]);
  return { base, proc, exited, log: () => log };
}
