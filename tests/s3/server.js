#!/usr/bin/env node
// server.js - the local S3 server of dsa-ingest's tests and benchmark: npm's s3rver on
// 127.0.0.1, plus what s3rver 3.7 lacks and the tests must prove: a full SigV4 check of every
// signed request (s3rver itself only looks the access key up), session tokens that must match
// and be signed, credentials that expire, optional If-Match (412), and a JSON request log.
//
// Usage: node server.js --directory DIR --keys KEYS.json [--port N] [--bucket B]... [--if-match]
//                       [--slowdown-every N] [--allow-anonymous] [--quiet]
// KEYS.json: [{"accessKeyId", "secretAccessKey", "sessionToken"?, "expires"? (epoch s)}], re-read
// whenever the file changes (a fake STS adds the keys it issues). stdout: one JSON object per
// line: {"event":"listening","port":N}, then {"event":"request",…} per request.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const S3rver = require('s3rver');
const AWSAccount = require('s3rver/lib/models/account');
const S3Error = require('s3rver/lib/models/error');
const FilesystemStore = require('s3rver/lib/stores/filesystem');

// parseArgs reads the few options this launcher takes.
function parseArgs(argv) {
  const o = { port: 0, buckets: [], ifMatch: false, slowdownEvery: 0, anonymous: false, quiet: false };
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--directory') o.directory = argv[++i];
    else if (a === '--keys') o.keys = argv[++i];
    else if (a === '--port') o.port = Number(argv[++i]);
    else if (a === '--bucket') o.buckets.push(argv[++i]);
    else if (a === '--if-match') o.ifMatch = true;
    else if (a === '--slowdown-every') o.slowdownEvery = Number(argv[++i]);
    else if (a === '--allow-anonymous') o.anonymous = true;
    else if (a === '--quiet') o.quiet = true;
    else throw new Error('unknown option ' + a);
  }
  if (!o.directory || !o.keys) throw new Error('--directory and --keys are required');
  return o;
}

// Keys: the table of valid credentials, reloaded when the file's mtime changes.
class Keys {
  constructor(file) {
    this.file = file;
    this.mtime = -1;
    this.byId = new Map();
  }

  // get returns the key record for an access key id (reloading first if the file changed).
  get(id) {
    let st;
    try {
      st = fs.statSync(this.file);
    } catch (e) {
      return undefined;
    }
    if (st.mtimeMs !== this.mtime || !this.byId.has(id)) this.load(st.mtimeMs);
    return this.byId.get(id);
  }

  load(mtime) {
    let list;
    try {
      list = JSON.parse(fs.readFileSync(this.file, 'utf8'));
    } catch (e) {
      return; // a half-written file: keep the old table, the next request retries
    }
    this.mtime = mtime;
    this.byId = new Map(list.map(k => [k.accessKeyId, k]));
    for (const k of list) AWSAccount.DUMMY_ACCOUNT.createKeyPair(k.accessKeyId, k.secretAccessKey);
  }
}

// rfc3986 encodes like SigV4's UriEncode: everything but A-Z a-z 0-9 - . _ ~.
function rfc3986(s) {
  return encodeURIComponent(s).replace(/[!'()*]/g, c => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

// canonicalUri decodes each segment of the raw path and encodes it again, as S3 does: a client
// that signed a differently encoded path (a raw '+', a lowercase escape) fails the check.
function canonicalUri(rawPath) {
  return rawPath.split('/').map(seg => rfc3986(decodeURIComponent(seg))).join('/');
}

// canonicalQuery sorts and encodes the query parameters.
function canonicalQuery(rawQuery) {
  if (!rawQuery) return '';
  return rawQuery.split('&').filter(Boolean).map(p => {
    const i = p.indexOf('=');
    const k = decodeURIComponent(i < 0 ? p : p.slice(0, i));
    const v = i < 0 ? '' : decodeURIComponent(p.slice(i + 1).replace(/\+/g, '%20'));
    return [rfc3986(k), rfc3986(v)];
  }).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : 1))
    .map(([k, v]) => k + '=' + v).join('&');
}

// parseAuthorization splits "AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…".
function parseAuthorization(h) {
  const m = /^AWS4-HMAC-SHA256 (.*)$/.exec(h || '');
  if (!m) throw new S3Error('AccessDenied', 'Only AWS4-HMAC-SHA256 header signatures are accepted here');
  const parts = {};
  for (const kv of m[1].split(',')) {
    const i = kv.indexOf('=');
    parts[kv.slice(0, i).trim()] = kv.slice(i + 1).trim();
  }
  if (!parts.Credential || !parts.SignedHeaders || !parts.Signature) {
    throw new S3Error('AuthorizationHeaderMalformed', 'The authorization header is malformed');
  }
  const [id, date, region, service, term] = parts.Credential.split('/');
  return { id, date, region, service, term, signed: parts.SignedHeaders.split(';'), signature: parts.Signature };
}

// checkKey applies what the key record demands: a matching, signed token, no expiry.
function checkKey(key, auth, headers) {
  if (!key) throw new S3Error('InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.');
  const token = headers['x-amz-security-token'];
  if (token !== undefined && !auth.signed.includes('x-amz-security-token')) {
    throw new S3Error('AccessDenied', 'x-amz-security-token must be signed');
  }
  if (key.sessionToken && token !== key.sessionToken) {
    throw new S3Error('InvalidToken', 'The provided token is malformed or otherwise invalid.');
  }
  if (key.expires && Date.now() / 1000 > key.expires) {
    throw new S3Error('ExpiredToken', 'The provided token has expired.');
  }
}

// signatureFor recomputes the SigV4 signature of a request from the headers it says it signed.
function signatureFor(req, auth, secret) {
  const [rawPath, rawQuery] = req.url.split('?', 2);
  const headers = auth.signed.map(n => {
    const v = req.headers[n];
    if (v === undefined) throw new S3Error('AccessDenied', 'signed header ' + n + ' is missing');
    return n + ':' + String(v).trim().replace(/\s+/g, ' ');
  });
  const amzDate = req.headers['x-amz-date'];
  const canonical = [req.method, canonicalUri(rawPath), canonicalQuery(rawQuery), headers.join('\n') + '\n',
    auth.signed.join(';'), req.headers['x-amz-content-sha256']].join('\n');
  const scope = [auth.date, auth.region, auth.service, auth.term].join('/');
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope,
    crypto.createHash('sha256').update(canonical, 'utf8').digest('hex')].join('\n');
  let k = crypto.createHmac('sha256', 'AWS4' + secret).update(auth.date).digest();
  for (const part of [auth.region, auth.service, auth.term]) k = crypto.createHmac('sha256', k).update(part).digest();
  return crypto.createHmac('sha256', k).update(toSign).digest('hex');
}

// verify checks one request's SigV4 header signature completely.
function verify(req, keys, log) {
  const auth = parseAuthorization(req.headers.authorization);
  log.accessKey = auth.id;
  log.region = auth.region;
  for (const need of ['host', 'x-amz-date', 'x-amz-content-sha256']) {
    if (!auth.signed.includes(need)) throw new S3Error('AccessDenied', need + ' must be signed');
  }
  if (auth.service !== 's3' || auth.term !== 'aws4_request') {
    throw new S3Error('AuthorizationHeaderMalformed', 'bad credential scope');
  }
  const when = Date.parse(String(req.headers['x-amz-date']).replace(
    /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/, '$1-$2-$3T$4:$5:$6Z'));
  if (!(Math.abs(Date.now() - when) < 15 * 60 * 1000)) {
    throw new S3Error('RequestTimeTooSkewed', 'The difference between the request time and the current time is too large.');
  }
  const key = keys.get(auth.id);
  checkKey(key, auth, req.headers);
  const want = signatureFor(req, auth, key.secretAccessKey);
  if (!crypto.timingSafeEqual(Buffer.from(want), Buffer.from(auth.signature.padEnd(want.length).slice(0, want.length)))) {
    throw new S3Error('SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided. Check your key and signing method.');
  }
}

// authMiddleware runs first: every request is verified and logged (status and error code).
function authMiddleware(opts, keys) {
  return async (ctx, next) => {
    const log = {
      event: 'request', method: ctx.method, url: ctx.req.url, range: ctx.get('range') || null,
      ifMatch: ctx.get('if-match') || null, token: Boolean(ctx.get('x-amz-security-token')),
      accessKey: null, time: Date.now() / 1000,
    };
    ctx.res.on('close', () => {
      log.status = ctx.status;
      log.finished = ctx.res.writableFinished;
      if (!opts.quiet) process.stdout.write(JSON.stringify(log) + '\n');
    });
    try {
      if (ctx.req.headers.authorization) verify(ctx.req, keys, log);
      else if (!opts.anonymous) throw new S3Error('AccessDenied', 'Access Denied');
      await next();
    } catch (err) {
      log.code = err.code || 'InternalError';
      throw err;
    }
  };
}

// ifMatchMiddleware answers 412 when If-Match names another version, as S3 does.
function ifMatchMiddleware() {
  return async (ctx, next) => {
    const want = ctx.get('if-match');
    const m = /^\/([^/]+)\/(.+)$/.exec(ctx.path);
    if (want && m && (ctx.method === 'GET' || ctx.method === 'HEAD')) {
      let meta;
      try {
        meta = await ctx.app.store.getMetadata(m[1], m[2]);
      } catch (e) {
        meta = null;
      }
      if (meta && want !== '*' && want !== meta.etag) {
        throw new S3Error('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', { Condition: 'If-Match' });
      }
    }
    return next();
  };
}

// slowdownMiddleware answers every Nth object GET with 503 SlowDown, as a busy S3 prefix does.
function slowdownMiddleware(every) {
  let gets = 0;
  return async (ctx, next) => {
    if (ctx.method === 'GET' && /^\/[^/]+\/.+/.test(ctx.path) && ++gets % every === 0) {
      throw new S3Error('SlowDown', 'Please reduce your request rate.');
    }
    return next();
  };
}

// atomicPut makes an overwrite replace the object file by rename, as S3 replaces a version
// whole: a GET already streaming the old bytes keeps reading the old file, never a mix.
function atomicPut() {
  const original = FilesystemStore.prototype.putObject;
  FilesystemStore.prototype.putObject = async function putObject(object) {
    const finalPath = this.getResourcePath(object.bucket, object.key, 'object');
    const tmpKey = object.key + '.partial-' + process.pid + '-' + Date.now();
    const tmp = Object.assign(Object.create(Object.getPrototypeOf(object)), object, { key: tmpKey });
    const result = await original.call(this, tmp);
    const tmpPath = this.getResourcePath(object.bucket, tmpKey, 'object');
    await this.putMetadata(object.bucket, object.key, object.metadata, result.md5);
    fs.renameSync(tmpPath, finalPath);
    for (const suffix of ['object.md5', 'metadata.json']) {
      fs.rmSync(this.getResourcePath(object.bucket, tmpKey, suffix), { force: true });
    }
    return result;
  };
}

// main starts the server and reports its port.
async function main() {
  const opts = parseArgs(process.argv);
  const keys = new Keys(opts.keys);
  atomicPut();
  const server = new S3rver({
    address: '127.0.0.1', port: opts.port, silent: true, directory: path.resolve(opts.directory),
    vhostBuckets: false, configureBuckets: opts.buckets.map(name => ({ name, configs: [] })),
  });
  server.middleware.unshift(authMiddleware(opts, keys));
  if (opts.ifMatch) server.middleware.splice(1, 0, ifMatchMiddleware());
  if (opts.slowdownEvery > 0) server.middleware.splice(1, 0, slowdownMiddleware(opts.slowdownEvery));
  const addr = await server.run();
  process.stdout.write(JSON.stringify({ event: 'listening', port: addr.port }) + '\n');
  const stop = () => process.exit(0); // no graceful close: keep-alive sockets would hold it open
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.stdin.on('end', stop); // the parent died: do not outlive it
  process.stdin.resume();
}

main().catch(err => {
  process.stderr.write('s3 server: ' + (err.stack || err) + '\n');
  process.exit(1);
});
