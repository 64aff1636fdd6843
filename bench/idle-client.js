// bench/idle-client.js: the third part of scripts/bench.sh. Opens N connections to a
// server, sends one guarded GET on each (HTTP/1.1, keep-alive), reads the whole answer,
// and then keeps every connection open and silent. Once all are open it prints one JSON
// line, {"opened":N,"ok":K,"errors":E,"first_error":"..."}, and holds them until it gets
// SIGTERM or SIGINT.
//
// Usage: node idle-client.js HOST PORT COUNT PATH TOKEN [BATCH]
//   BATCH connections are opened at once (default 500), the next batch once they answered.
"use strict";
const net = require("net");

const [host, portArg, countArg, path, token, batchArg] = process.argv.slice(2);
const port = Number(portArg);
const count = Number(countArg);
const batch = Number(batchArg || 500);
if (!host || !port || !count || !path || !token || !batch) {
  console.error("usage: node idle-client.js HOST PORT COUNT PATH TOKEN [BATCH]");
  process.exit(2);
}
const request = Buffer.from(
  `GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nAuthorization: Bearer ${token}\r\n\r\n`,
);

const sockets = [];
let ok = 0;
let errors = 0;
let firstError = "";

// Resolves with the status code once the whole answer (head and Content-Length body) is in.
function one() {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    let head = null;
    let buffered = Buffer.alloc(0);
    let need = 0;
    const fail = (why) => {
      errors++;
      if (!firstError) firstError = why;
      socket.destroy();
      resolve(0);
    };
    socket.setNoDelay(true);
    socket.on("connect", () => socket.write(request));
    socket.on("error", (e) => fail(e.message));
    socket.on("close", () => {
      if (!head) fail("closed before answering");
    });
    socket.on("data", (chunk) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (!head) {
        const end = buffered.indexOf("\r\n\r\n");
        if (end < 0) return;
        head = buffered.subarray(0, end).toString("latin1");
        buffered = buffered.subarray(end + 4);
        const length = /^content-length:\s*(\d+)/im.exec(head);
        need = length ? Number(length[1]) : 0;
      }
      if (buffered.length >= need) {
        socket.removeAllListeners("data");
        const status = Number(head.split(" ", 2)[1]);
        if (status === 200) ok++;
        sockets.push(socket);
        resolve(status);
      }
    });
  });
}

async function main() {
  for (let opened = 0; opened < count; opened += batch) {
    const n = Math.min(batch, count - opened);
    await Promise.all(Array.from({ length: n }, one));
  }
  console.log(JSON.stringify({ opened: sockets.length, ok, errors, first_error: firstError }));
  const done = () => {
    for (const s of sockets) s.destroy();
    process.exit(0);
  };
  process.on("SIGTERM", done);
  process.on("SIGINT", done);
  setInterval(() => {}, 1 << 30); // keeps the event loop alive while the sockets idle
}

main();
