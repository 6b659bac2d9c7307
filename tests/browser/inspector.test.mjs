// End-to-end: the web inspector in a real browser (Debian's chromium driven by playwright-core).
// Usage: node inspector.test.mjs PATH/TO/inspector_fixture PATH/TO/parley-inspect PATH/TO/greetings
// 1. The fixture writes a database through the real SQLite handler; `parley-inspect DB serve
//    --port 0` serves it. Find a session by user and by tag, open its timeline, expand a
//    reasoning run (tokens, a tool call's arguments), see a transition and its reason, an
//    error, an intent's parameter, follow an agent message to the other session, and check
//    that a chat message holding markup is shown as text and never runs.
// 2. Live, against the greetings bot (--port 0 --db TEMP, the inspector on by default on a
//    loopback host): the chat page in one tab, the inspector's session page in another; a
//    message sent in the chat appears in the inspector without a reload, and the diagram
//    marks the current state.
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import assert from "node:assert/strict";

// ctest SKIP_RETURN_CODE; under ./dev test (PARLEY_REQUIRE_BROWSER=1) a missing browser or
// playwright-core is a failure, never a silent skip.
const SKIP = process.env.PARLEY_REQUIRE_BROWSER === "1" ? 1 : 77;
const [fixture, inspect, greetings] = process.argv.slice(2);
for (const p of [fixture, inspect, greetings])
  if (!p || !existsSync(p)) {
    console.error("usage: node inspector.test.mjs PATH/TO/inspector_fixture PATH/TO/parley-inspect PATH/TO/greetings");
    process.exit(2);
  }
const chromiumPath = process.env.CHROMIUM || "/usr/bin/chromium";
let chromium;
try { ({ chromium } = await import("playwright-core")); } catch {
  console.error("SKIP: playwright-core is not installed (./dev test installs it into BUILD_DIR/npm)");
  process.exit(SKIP);
}
if (!existsSync(chromiumPath)) { console.error("SKIP: no " + chromiumPath + " (./dev test installs chromium)"); process.exit(SKIP); }

const work = mkdtempSync(join(tmpdir(), "parley-inspector-"));
const deadline = (ms, what) => new Promise((_, reject) => setTimeout(() => reject(new Error("timed out: " + what)), ms).unref());
const children = [];

// Starts `argv`, resolves with the first match of `re` in its stdout or stderr.
async function start(argv, re, what) {
  const proc = spawn(argv[0], argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
  children.push(proc);
  proc.output = "";
  const exited = new Promise(resolve => proc.on("exit", (code, signal) => resolve({ code, signal })));
  proc.exited = exited;
  const url = await Promise.race([
    new Promise(resolve => {
      const onData = d => {
        proc.output += d;
        const m = re.exec(proc.output);
        if (m) resolve(m[1]);
      };
      proc.stdout.on("data", onData);
      proc.stderr.on("data", onData);
    }),
    exited.then(e => { throw new Error(what + " exited (" + JSON.stringify(e) + "):\n" + proc.output); }),
    deadline(15000, what + "'s URL"),
  ]);
  return { proc, url };
}

// ---- the fixture database, served on its own ----
const dbPath = join(work, "fixture.db");
// --big: frank's session of about 10,000 rows (a long timeline, fetched in pages of 1000).
const made = JSON.parse(execFileSync(fixture, [dbPath, "--big", "3400"], { timeout: 30000, stdio: ["ignore", "pipe", "ignore"] }).toString());
const tagOf = Object.fromEntries(made.users.map(u => [u.user, u.tag]));
console.log("fixture:", JSON.stringify(made));
// The first line of stdout names the URL: "inspector: http://127.0.0.1:PORT/inspect".
const served = await start([inspect, dbPath, "serve", "--port", "0"], /(https?:\/\/[^\s]+)/, "parley-inspect serve");
const inspectorUrl = served.url;
console.log("parley-inspect serves", inspectorUrl);

const context = await chromium.launchPersistentContext(join(work, "profile"), {
  executablePath: chromiumPath,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
context.setDefaultTimeout(10000);
const errors = [];
const foreign = [];
function watch(page, origin) {
  page.on("pageerror", e => errors.push(String(e)));
  page.on("request", r => {
    const u = r.url();
    if (!u.startsWith(origin) && !/^wss?:/.test(u) && !u.startsWith("data:") && !u.startsWith("blob:")) foreign.push(u);
  });
  return page;
}

let failed = false;
try {
  const origin = new URL(inspectorUrl).origin;
  const page = watch(context.pages()[0] || await context.newPage(), origin);
  await page.goto(inspectorUrl);

  // ---- the sessions list: find a session by user ----
  const rows = page.locator("table.sessions tbody tr");
  await rows.first().waitFor();
  assert.equal(await rows.count(), made.users.length, "every fixture session is listed");
  await page.fill("#q", "bob");
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => document.querySelectorAll("table.sessions tbody tr").length === 1
    && document.querySelector("table.sessions tbody tr td.user").textContent === "bob");
  const bobRow = rows.first();
  assert.equal(await bobRow.locator("a.session-link").textContent(), tagOf.bob);
  assert.ok(Number(await bobRow.locator("td.errors").textContent()) >= 1, "bob's session counts its error");
  // 412+38 + 530+41 + 601+12 + 702+20: the run's model calls.
  assert.equal(Number(await bobRow.locator("td.tokens").textContent()), 2356, "tokens are the run's prompt + completion tokens");
  console.log("found bob by user:", await bobRow.textContent());

  // By tag, with or without '#'.
  for (const q of [tagOf.erin, tagOf.erin.slice(1)]) {
    await page.fill("#q", q);
    await page.keyboard.press("Enter");
    await page.waitForFunction(t => { const r = document.querySelectorAll("table.sessions tbody tr");
      return r.length === 1 && r[0].querySelector("a.session-link").textContent === t; }, tagOf.erin);
  }

  // ---- bob's timeline: transitions with reasons, the error, the reasoning run ----
  await page.fill("#q", "bob");
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => document.querySelector("table.sessions tbody tr td.user")?.textContent === "bob");
  await page.click("table.sessions tbody tr a.session-link");
  await page.waitForURL(/#\/session\/\d+$/);
  await page.locator("#session-tag", { hasText: tagOf.bob }).waitFor();
  const crash = page.locator(".row.transition", { hasText: "ready → broken" });
  await crash.waitFor();
  assert.match(await crash.locator(".reason").textContent(), /intent crash/, "the transition shows its reason");
  const error = page.locator(".row.event.error");
  await error.waitFor();
  assert.match(await error.textContent(), /the oven caught fire/);
  assert.equal(await page.locator(".row.intent", { hasText: "plan" }).locator(".score").first().textContent(), "1.00");

  const run = page.locator("details.run").first();
  await run.waitFor();
  assert.equal(await run.evaluate(d => d.open), false, "a run starts collapsed");
  const toolArgs = run.locator(".tool-call pre.arguments", { hasText: "Lyon" });
  assert.equal(await toolArgs.isVisible(), false);
  await run.locator("> summary").click();
  assert.equal(await run.evaluate(d => d.open), true, "clicking the run expands it");
  await toolArgs.waitFor({ state: "visible" });
  assert.deepEqual(JSON.parse(await toolArgs.textContent()), { from: "Lyon", to: "Paris", date: "2026-12-01" });
  await run.locator(".badge.tokens", { hasText: "412 + 38 tokens" }).waitFor({ state: "visible" });
  await run.locator(".badge.latency", { hasText: "813 ms" }).first().waitFor({ state: "visible" });
  assert.match(await run.locator("> summary").textContent(), /2356 tokens/);
  await run.locator(".tool-result pre.result", { hasText: "TGV 6604 at 07:04" }).waitFor({ state: "visible" });
  await run.locator(".entry[data-kind=pushback]").waitFor({ state: "visible" });
  await run.locator(".entry[data-kind=task_completed]").waitFor({ state: "visible" });
  // The reply the run led to (its chat_id) offers the steps: collapse, then "Why?" opens it.
  await run.locator("> summary").click();
  const reply = page.locator(".row.chat.bot", { hasText: "Take the TGV 6604" });
  await reply.locator("button.why").click();
  assert.equal(await run.evaluate(d => d.open), true, "the reply's Why? button opens its run");
  // "Next error or warning" walks the problems: the error event first.
  await page.click("#next-error");
  assert.equal(await error.evaluate(e => e.hasAttribute("data-current-problem")), true, "the first problem is the error event");
  await page.click("#next-error");
  await run.locator(".entry[data-kind=pushback][data-current-problem]").waitFor({ state: "visible" });
  console.log("bob: transition reason, error, reasoning run with tokens and tool arguments");

  // ---- carol's agent message links to dave's session ----
  await page.goto(inspectorUrl + "#/?q=carol");
  await page.waitForFunction(() => document.querySelector("table.sessions tbody tr td.user")?.textContent === "carol");
  await page.click("table.sessions tbody tr a.session-link");
  await page.locator("#session-tag", { hasText: tagOf.carol }).waitFor();
  const sent = page.locator(".row.agent_message.out");
  await sent.waitFor();
  assert.match(await sent.textContent(), /Which trains go from Lyon to Paris tomorrow\?/);
  await sent.locator("a.other-session").click();
  await page.locator("#session-tag", { hasText: tagOf.dave }).waitFor();
  await page.locator(".row.agent_message.in", { hasText: "Which trains" }).waitFor();
  console.log("carol's message links to dave's session");

  // ---- alice: an intent parameter, and markup shown as text ----
  await page.goto(inspectorUrl + "#/?q=alice");
  await page.waitForFunction(() => document.querySelector("table.sessions tbody tr td.user")?.textContent === "alice");
  await page.click("table.sessions tbody tr a.session-link");
  await page.locator("#session-tag", { hasText: tagOf.alice }).waitFor();
  await page.locator(".row.intent .param", { hasText: "count=3" }).waitFor();
  await page.locator(".row.transition .reason", { hasText: "the kitchen is open" }).waitFor();
  const evil = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>';
  const bubble = page.locator(".row.chat.user .bubble", { hasText: "<img src=x" });
  await bubble.waitFor();
  assert.equal(await bubble.textContent(), evil, "the markup is shown as text");
  await page.locator(".row.intent", { hasText: "<img src=x" }).first().waitFor();
  assert.equal(await page.locator(".timeline img, .timeline script").count(), 0, "no element made from the data");
  assert.equal(await page.evaluate(() => window.__pwned), undefined, "no script from the data ran");
  console.log("alice: the markup stays text");

  // ---- a long timeline: fetched page by page (after/more), rendered in chunks ----
  await page.goto(inspectorUrl + "#/?q=frank");
  await page.waitForFunction(() => document.querySelector("table.sessions tbody tr td.user")?.textContent === "frank");
  const fetches = [];
  page.on("request", r => { if (/\/inspect\/api\/session\/\d+\?/.test(r.url())) fetches.push(r.url()); });
  const t0 = Date.now();
  await page.click("table.sessions tbody tr a.session-link");
  await page.waitForFunction(() => document.querySelectorAll(".timeline > li").length >= 10000, null, { timeout: 60000 });
  const shown = await page.locator(".timeline > li").count();
  console.log("frank: " + shown + " rows in " + (Date.now() - t0) + " ms, " + fetches.length + " requests");
  assert.ok(fetches.length >= 10, "a long timeline comes in pages: " + fetches.length + " requests");
  assert.ok(fetches.every(u => new URL(u).searchParams.get("limit") === "1000"));
  // Still usable: the last reply is there and the page answers.
  await page.locator(".row.chat.user .bubble", { hasText: "message number 3399" }).waitFor({ state: "attached" });

  // ---- the diagram of a finished session: an SVG in an img ----
  await page.waitForFunction(() => { const i = document.getElementById("diagram"); return i && i.complete && i.naturalWidth > 0; });

  // ---- with a token: the page passes the one in its own URL to every call and the socket ----
  const guarded = await start([inspect, dbPath, "serve", "--port", "0", "--token", "s3cret-token"],
                              /(https?:\/\/[^\s]+)/, "parley-inspect serve --token");
  const locked = watch(await context.newPage(), new URL(guarded.url).origin);
  await locked.goto(guarded.url);
  await locked.locator("#alert:not([hidden])").waitFor();
  assert.match(await locked.locator("#alert").textContent(), /token/i, "without the token the page says what is wrong");
  await locked.goto(guarded.url + "?token=s3cret-token#/?q=bob");
  await locked.locator("table.sessions tbody tr a.session-link", { hasText: tagOf.bob }).click();
  await locked.locator(".row.transition", { hasText: "ready → broken" }).waitFor();
  await locked.locator('#live[data-state="open"]').waitFor();
  await locked.waitForFunction(() => { const i = document.getElementById("diagram"); return i.complete && i.naturalWidth > 0; });
  await locked.close();
  console.log("token: refused without it, everything works with it in the page's URL");

  // ---- live, against the greetings bot ----
  const bot = await start([greetings, "--port", "0", "--db", join(work, "greetings.db"), "--log-level", "info"],
                          /open (https?:\/\/\S+)/, "greetings");
  const botUrl = bot.url;
  console.log("greetings at", botUrl);
  const botOrigin = new URL(botUrl).origin;
  // The inspector's list first: no session yet. The chat page's session appears in it
  // without a reload (/inspect/live without a session says when something changed).
  const insp = watch(await context.newPage(), botOrigin);
  await insp.goto(new URL("/inspect", botUrl).href);
  await insp.locator(".summary-line", { hasText: "No sessions" }).waitFor();
  await insp.locator('#live[data-state="open"]').waitFor();
  await insp.evaluate(() => { window.__sameDocument = true; });

  const chat = watch(await context.newPage(), botOrigin);
  await chat.goto(botUrl);
  await chat.locator('#state[data-state="open"]').waitFor();
  await chat.locator(".msg.bot", { hasText: "greetings bot" }).first().waitFor();

  await insp.locator("table.sessions tbody tr a.session-link").first().waitFor();
  assert.equal(await insp.evaluate(() => window.__sameDocument), true, "the list refreshed without a reload");
  await insp.click("table.sessions tbody tr a.session-link");
  await insp.locator(".row.chat.bot", { hasText: "greetings bot" }).waitFor();
  await insp.locator('#live[data-state="open"]').waitFor();
  await insp.waitForFunction(() => { const i = document.getElementById("diagram"); return i.complete && i.naturalWidth > 0; });

  await chat.fill("#input", "hello");
  await chat.keyboard.press("Enter");
  await chat.locator(".msg.bot", { hasText: "How are you?" }).first().waitFor();
  await insp.locator(".row.chat.bot .option", { hasText: "Good" }).waitFor();
  // The inspector tab, without a reload: the user's message, the transition, the reply.
  await insp.locator(".row.chat.user .bubble", { hasText: "hello" }).waitFor();
  await insp.locator(".row.transition", { hasText: "→ ask" }).waitFor();
  await insp.locator(".row.chat.bot", { hasText: "How are you?" }).waitFor();
  await insp.locator('#session-state[data-state="ask"]').waitFor();
  assert.equal(await insp.evaluate(() => window.__sameDocument), true, "the rows came without a reload");
  console.log("live: the chat's message appeared in the inspector");

  // The diagram reloads after the transition and marks the current state ("ask").
  await insp.waitForFunction(() => { const i = document.getElementById("diagram");
    return /[?&]v=\d+/.test(i.src) && i.complete && i.naturalWidth > 0; });
  const svg = await insp.evaluate(async () => (await fetch(document.getElementById("diagram").src)).text());
  assert.match(svg, /<svg[\s>]/);
  const nodes = [...svg.matchAll(/<g id="[^"]*" class="node">\s*<title>([^<]*)<\/title>([\s\S]*?)<\/g>/g)]
    .map(m => ({ title: m[1], body: m[2] }));
  assert.ok(nodes.length >= 6, "the greetings bot's states are drawn: " + nodes.map(n => n.title).join(", "));
  const marked = nodes.filter(n => /#fde68a/i.test(n.body)).map(n => n.title);
  assert.deepEqual(marked, ["ask"], "only the current state is marked");
  console.log("diagram: current state marked:", marked[0]);

  assert.deepEqual(errors, [], "no script errors on the pages");
  assert.deepEqual(foreign, [], "nothing loaded from elsewhere");
  console.log("PASS");
} catch (e) {
  failed = true;
  console.error("FAIL:", e);
  for (const c of children) console.error("---- output of " + c.spawnargs[0] + ":\n" + c.output);
} finally {
  await context.close();
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  rmSync(work, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
