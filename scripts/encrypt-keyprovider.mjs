#!/usr/bin/env node
// A `cmd` key provider for tests and local experiments, speaking containers/ocicrypt's keyprovider
// protocol on stdin/stdout and writing CoCo attestation-agent annotation packets (the format of
// coco_keyprovider, v1: kid, wrapped_data, iv, wrap_type A256GCM).
//
//   encrypt-keyprovider.mjs --keys FILE [--rust]
//
// FILE is an offline-fs key map, {"repo/type/tag": "<base64 of a 32-byte KEK>"}; a kid
// `kbs:///repo/type/tag` names its entry. keywrap reads the DecryptConfig-style parameters of the
// `attestation-agent` provider, `keyid=kbs:///repo/type/tag` (coco_keyprovider's syntax,
// `key=value` pairs joined by `::`), and wraps optsdata under that KEK; keyunwrap unwraps a packet.
// Byte fields are answered as base64 strings (Go) or, with --rust, as arrays of numbers (Rust).
// Exits 1 with a message on stderr when it cannot answer.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'

const args = process.argv.slice(2)
const keysFile = args[args.indexOf('--keys') + 1]
const rust = args.includes('--rust')
if (!args.includes('--keys') || keysFile === undefined)
  fail('usage: encrypt-keyprovider.mjs --keys FILE [--rust]')

function fail(message) {
  process.stderr.write(`encrypt-keyprovider: ${message}\n`)
  process.exit(1)
}

function kekFor(kid) {
  const keys = JSON.parse(readFileSync(keysFile, 'utf8'))
  const path = kid.replace(/^kbs:\/\/[^/]*\//, '')
  const b64 = keys[path]
  if (typeof b64 !== 'string') fail(`no key for ${kid}`)
  return Buffer.from(b64, 'base64')
}

const bytesOut = (b) => (rust ? [...b] : b.toString('base64'))

const chunks = []
for await (const chunk of process.stdin) chunks.push(chunk)
const input = JSON.parse(Buffer.concat(chunks).toString('utf8'))

if (input.op === 'keywrap') {
  const params = input.keywrapparams?.ec?.Parameters?.['attestation-agent'] ?? []
  const text = params.map((p) => Buffer.from(p, 'base64').toString('utf8')).join('::')
  const kid = text
    .split('::')
    .find((kv) => kv.startsWith('keyid='))
    ?.slice('keyid='.length)
  if (kid === undefined) fail('keywrap needs keyid=… in the attestation-agent parameters')
  const optsdata = Buffer.from(input.keywrapparams.optsdata, 'base64')
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', kekFor(kid), iv)
  const wrapped = Buffer.concat([cipher.update(optsdata), cipher.final(), cipher.getAuthTag()])
  const packet = JSON.stringify({
    kid,
    wrapped_data: wrapped.toString('base64'),
    iv: iv.toString('base64'),
    wrap_type: 'A256GCM',
  })
  process.stdout.write(JSON.stringify({ keywrapresults: { annotation: bytesOut(Buffer.from(packet)) } }))
} else if (input.op === 'keyunwrap') {
  const packet = JSON.parse(Buffer.from(input.keyunwrapparams.annotation, 'base64').toString('utf8'))
  const kek = kekFor(packet.kid)
  const iv = Buffer.from(packet.iv, 'base64')
  const wrapped = Buffer.from(packet.wrapped_data, 'base64')
  let optsdata
  try {
    if (packet.wrap_type === 'A256CTR') {
      const d = createDecipheriv('aes-256-ctr', kek, iv)
      optsdata = Buffer.concat([d.update(wrapped), d.final()])
    } else {
      const d = createDecipheriv('aes-256-gcm', kek, iv)
      d.setAuthTag(wrapped.subarray(wrapped.length - 16))
      optsdata = Buffer.concat([d.update(wrapped.subarray(0, wrapped.length - 16)), d.final()])
    }
  } catch {
    fail(`the key for ${packet.kid} does not unwrap the packet`)
  }
  process.stdout.write(JSON.stringify({ keyunwrapresults: { optsdata: bytesOut(optsdata) } }))
} else {
  fail(`unknown op ${JSON.stringify(input.op)}`)
}
