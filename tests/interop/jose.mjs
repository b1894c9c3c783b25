// Bridge to panva/jose, an independent JOSE implementation, for the interop tests.
// Reads one JSON request on stdin, writes one JSON answer on stdout.
//   {"op":"decrypt","jwk":{...},"token":"..."}            -> {"header":{...},"plaintext":"..."}
//   {"op":"encrypt","jwk":{...},"header":{...},"plaintext":"..."} -> {"token":"..."}
//   {"op":"decrypt_set","jwks":{"keys":[...]},"token":"..."} -> as decrypt, the key picked
//     from the JWK Set by the header's kid and imported with importJWK
//   {"op":"dpop_key"} -> {"jwk":{...private...},"thumbprint":"..."}: a new ES256 key made by
//     panva/dpop's generateKeyPair, exported so later requests can sign with it
//   {"op":"dpop_proof","jwk":{...},"htu":"...","htm":"...","nonce"?:"...","access_token"?:"..."}
//     -> {"proof":"..."}: panva/dpop's generateProof
//   {"op":"verify_proof","proof":"...","typ":"dpop+jwt"} -> {"header":{...},"payload":{...},
//     "thumbprint":"..."}: jose's jwtVerify with EmbeddedJWK, and calculateJwkThumbprint
//   {"op":"dbsc_proof","jwk":{...private...},"jti":"...","embed":true|false} -> {"proof":"..."}:
//     a DBSC proof (typ dbsc+jwt) by jose's SignJWT, with the public jwk in the header
//     (registration) or without (refresh)
//   {"op":"verify_with","proof":"...","typ":"...","jwk":{...public...}} -> {"header":{...},
//     "payload":{...}}: jwtVerify under a given key (a DBSC refresh proof)
import {
  CompactEncrypt, compactDecrypt, base64url, importJWK, exportJWK, jwtVerify, EmbeddedJWK,
  calculateJwkThumbprint, SignJWT,
} from 'jose';
import * as dpop from 'dpop';
import { readStdin } from './stdin.mjs';

const input = await readStdin();
const req = JSON.parse(input);
const key = req.jwk ? base64url.decode(req.jwk.k) : undefined;
if (req.op === 'decrypt_set') {
  const { plaintext, protectedHeader } = await compactDecrypt(req.token, async (header) => {
    const jwk = req.jwks.keys.find((k) => k.kid === header.kid);
    if (!jwk) throw new Error(`no key ${header.kid} in the set`);
    return importJWK(jwk, 'dir');
  }, { keyManagementAlgorithms: ['dir'] });
  process.stdout.write(JSON.stringify({
    header: protectedHeader,
    plaintext: new TextDecoder().decode(plaintext),
  }));
} else if (req.op === 'decrypt') {
  const { plaintext, protectedHeader } = await compactDecrypt(req.token, key, {
    keyManagementAlgorithms: ['dir'],
  });
  process.stdout.write(JSON.stringify({
    header: protectedHeader,
    plaintext: new TextDecoder().decode(plaintext),
  }));
} else if (req.op === 'encrypt') {
  const token = await new CompactEncrypt(new TextEncoder().encode(req.plaintext))
    .setProtectedHeader(req.header)
    .encrypt(key);
  process.stdout.write(JSON.stringify({ token }));
} else if (req.op === 'dpop_key') {
  const pair = await dpop.generateKeyPair('ES256', { extractable: true });
  process.stdout.write(JSON.stringify({
    jwk: await exportJWK(pair.privateKey),
    thumbprint: await dpop.calculateThumbprint(pair.publicKey),
  }));
} else if (req.op === 'dpop_proof') {
  const { d, ...pub } = req.jwk;
  const pair = {
    privateKey: await importJWK(req.jwk, 'ES256'),
    publicKey: await importJWK(pub, 'ES256', true),
  };
  const proof = await dpop.generateProof(pair, req.htu, req.htm, req.nonce, req.access_token);
  process.stdout.write(JSON.stringify({ proof }));
} else if (req.op === 'verify_proof') {
  const { payload, protectedHeader } = await jwtVerify(req.proof, EmbeddedJWK, {
    typ: req.typ,
    algorithms: ['ES256'],
  });
  process.stdout.write(JSON.stringify({
    header: protectedHeader,
    payload,
    thumbprint: await calculateJwkThumbprint(protectedHeader.jwk, 'sha256'),
  }));
} else if (req.op === 'dbsc_proof') {
  const { d, ...pub } = req.jwk;
  const header = { alg: 'ES256', typ: 'dbsc+jwt' };
  if (req.embed) header.jwk = pub;
  const proof = await new SignJWT({ jti: req.jti })
    .setProtectedHeader(header)
    .sign(await importJWK(req.jwk, 'ES256'));
  process.stdout.write(JSON.stringify({ proof }));
} else if (req.op === 'verify_with') {
  const { payload, protectedHeader } = await jwtVerify(req.proof, await importJWK(req.jwk, 'ES256'), {
    typ: req.typ,
    algorithms: ['ES256'],
  });
  process.stdout.write(JSON.stringify({ header: protectedHeader, payload }));
} else {
  throw new Error(`unknown op ${req.op}`);
}
