// A local OpenAI-compatible server that answers instantly (one process), for client benchmarks.
// Usage: node perf/instant_server.js PORT
const http = require('http');
const port = parseInt(process.argv[2], 10);
const completion = JSON.stringify({
  id: 'cmpl-1', object: 'chat.completion', model: 'instant',
  choices: [{index: 0, message: {role: 'assistant', content: 'The answer is \\boxed{42}.'}, finish_reason: 'stop'}],
  usage: {prompt_tokens: 10, completion_tokens: 7, total_tokens: 17},
});
const models = JSON.stringify({object: 'list', data: [{id: 'instant', object: 'model'}]});
const server = http.createServer((req, res) => {
  req.on('data', () => {});
  req.on('end', () => {
    const body = req.url.endsWith('/models') ? models : completion;
    res.writeHead(200, {'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body)});
    res.end(body);
  });
});
server.keepAliveTimeout = 120000;
server.listen(port, '127.0.0.1');
