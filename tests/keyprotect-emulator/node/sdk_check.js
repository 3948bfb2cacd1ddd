'use strict';
// Drives the Key Protect emulator with IBM's own Node SDK
// (@ibm-cloud/ibm-key-protect) and prints what the SDK saw as one JSON line.
// Environment: KP_URL, KP_INSTANCE, KP_APIKEY; NODE_EXTRA_CA_CERTS = the emulator's CA.
const crypto = require('crypto');
const KeyProtectV2 = require('@ibm-cloud/ibm-key-protect/ibm-key-protect-api/v2');
const { IamAuthenticator } = require('@ibm-cloud/ibm-key-protect/auth');

const KEY = 'application/vnd.ibm.kms.key+json';
const env = { bluemixInstance: process.env.KP_INSTANCE };
const client = new KeyProtectV2({
  authenticator: new IamAuthenticator({ apikey: process.env.KP_APIKEY, url: process.env.KP_URL }),
  serviceUrl: process.env.KP_URL,
});

function wrapper(resource) {
  return { metadata: { collectionType: KEY, collectionTotal: 1 }, resources: [Object.assign({ type: KEY }, resource)] };
}

// Secure import (KEYPROTECT.md §2): RSA-OAEP-SHA-256 of the material under the
// import token's public key, and AES-GCM of the token's nonce under the material.
function secureFields(token, material) {
  const publicKey = Buffer.from(token.payload, 'base64').toString();
  const payload = crypto.publicEncrypt({ key: publicKey, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, material);
  const iv = crypto.randomBytes(12);
  const gcm = crypto.createCipheriv('aes-256-gcm', material, iv);
  const sealed = Buffer.concat([gcm.update(Buffer.from(token.nonce, 'base64')), gcm.final(), gcm.getAuthTag()]);
  return { payload: payload.toString('base64'), encryptedNonce: sealed.toString('base64'), iv: iv.toString('base64'), encryptionAlgorithm: 'RSAES_OAEP_SHA_256' };
}

// The SDK core keeps the raw error body in err.body; Key Protect's reason
// code is in resources[0].reasons[0].code (KEYPROTECT.md §3.5).
function reasonCode(err) {
  const body = typeof err.body === 'string' ? JSON.parse(err.body) : err.body;
  return body.resources[0].reasons[0].code;
}

async function main() {
  const seen = {};
  let r = await client.createKey(Object.assign({ body: wrapper({ name: 'sdk-root', extractable: false }) }, env));
  seen.createStatus = r.status;
  const root = r.result.resources[0];
  seen.root = { id: root.id, state: root.state, extractable: root.extractable, imported: root.imported };

  r = await client.createKey(Object.assign({ body: wrapper({ name: 'sdk-standard', extractable: true, payload: Buffer.from('standard payload').toString('base64') }) }, env));
  seen.standardId = r.result.resources[0].id;

  r = await client.postImportToken(Object.assign({ expiration: 1200, maxAllowedRetrievals: 1 }, env));
  seen.importTokenRetrievals = r.result.remainingRetrievals;
  const token = (await client.getImportToken(env)).result;
  const material = crypto.randomBytes(32);
  r = await client.createKey(Object.assign({ body: wrapper(Object.assign({ name: 'sdk-imported', extractable: false }, secureFields(token, material))) }, env));
  const imported = r.result.resources[0];
  seen.imported = { id: imported.id, imported: imported.imported, version: imported.keyVersion.id };

  const plaintext = crypto.randomBytes(32).toString('base64');
  r = await client.wrapKey(Object.assign({ id: imported.id, keyActionWrapBody: { plaintext, aad: ['keel-uid-1'] } }, env));
  const wrapped = r.result;
  r = await client.unwrapKey(Object.assign({ id: imported.id, keyActionUnwrapBody: { ciphertext: wrapped.ciphertext, aad: ['keel-uid-1'] } }, env));
  seen.unwrapMatches = r.result.plaintext === plaintext;

  // An imported root key rotates with new material (here: plain payload).
  r = await client.rotateKey(Object.assign({ id: imported.id, keyActionRotateBody: { payload: crypto.randomBytes(32).toString('base64') } }, env));
  seen.rotateStatus = r.status;
  r = await client.rotateKey(Object.assign({ id: root.id }, env));
  seen.rotateGeneratedStatus = r.status;
  r = await client.unwrapKey(Object.assign({ id: imported.id, keyActionUnwrapBody: { ciphertext: wrapped.ciphertext, aad: ['keel-uid-1'] } }, env));
  seen.afterRotate = { plaintextMatches: r.result.plaintext === plaintext, keyVersion: r.result.keyVersion.id, rewrapped: r.result.rewrappedKeyVersion && r.result.rewrappedKeyVersion.id };
  r = await client.rewrapKey(Object.assign({ id: imported.id, keyActionRewrapBody: { ciphertext: wrapped.ciphertext, aad: ['keel-uid-1'] } }, env));
  seen.rewrapVersion = r.result.rewrappedKeyVersion.id;
  r = await client.getKeyVersions(Object.assign({ id: imported.id }, env));
  seen.versions = r.result.resources.map((v) => v.id);

  try {
    await client.rotateKey(Object.assign({ id: imported.id, keyActionRotateBody: { payload: crypto.randomBytes(32).toString('base64') } }, env));
    seen.secondRotate = 'accepted';
  } catch (err) {
    seen.secondRotate = { status: err.status, code: reasonCode(err) };
  }

  r = await client.getKeys(Object.assign({ limit: 10 }, env));
  seen.listed = r.result.resources.map((k) => k.name).sort();
  r = await client.getKey(Object.assign({ id: seen.standardId }, env));
  seen.standardPayload = Buffer.from(r.result.resources[0].payload, 'base64').toString();

  r = await client.deleteKey(Object.assign({ id: seen.standardId, prefer: 'return=representation' }, env));
  seen.deleted = { status: r.status, state: r.result.resources[0].state };
  try {
    await client.wrapKey(Object.assign({ id: seen.standardId, keyActionWrapBody: {} }, env));
    seen.wrapDeleted = 'accepted';
  } catch (err) {
    seen.wrapDeleted = { status: err.status };
  }
  r = await client.getKeys(Object.assign({ state: [1, 5] }, env));
  seen.listedWithDeleted = r.result.resources.length;
  process.stdout.write(JSON.stringify(seen) + '\n');
}

main().catch((err) => {
  process.stderr.write('sdk_check: ' + (err.status || '') + ' ' + err.message + '\n');
  process.exit(1);
});
