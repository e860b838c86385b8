// The main key flows through Alibaba's Node.js KMS SDK (@alicloud/kms20160120 on @alicloud/rpc-client),
// unchanged, against the OpenKMS server named by OPENKMS_ENDPOINT (host:port, plain HTTP) with the
// access key in OPENKMS_ACCESS_KEY_ID / OPENKMS_ACCESS_KEY_SECRET. Prints one JSON document of what
// each step answered; tests/api/test_node_sdk.py asserts on it. Any unexpected failure exits 1.
'use strict';

const Kms = require('@alicloud/kms20160120');
const { Config } = require('@alicloud/rpc-client');
const Util = require('@alicloud/tea-util');

const Client = Kms.default;

async function refusal(step) {
  try {
    await step();
  } catch (err) {
    return { code: err.code, status: err.data && err.data.httpCode, message: err.message };
  }
  return { code: null };
}

async function main() {
  const kms = new Client(new Config({
    accessKeyId: process.env.OPENKMS_ACCESS_KEY_ID,
    accessKeySecret: process.env.OPENKMS_ACCESS_KEY_SECRET,
    endpoint: process.env.OPENKMS_ENDPOINT,
    protocol: 'http',
    regionId: 'cn-hangzhou',
  }));
  const out = {};
  // This SDK release predates KMS instances (no ListKmsInstances, no DKMSInstanceId on CreateKey):
  // those two go through its generic RPC call, signed and sent the same way.
  const call = (action, query) => kms.doRequest(
    action, 'HTTPS', 'POST', '2016-01-20', 'AK', query, null, new Util.RuntimeOptions({}),
  );
  const instances = await call('ListKmsInstances', {});
  const instanceId = instances.KmsInstances.KmsInstance[0].KmsInstanceId;
  const createKey = (extra) => call('CreateKey', { DKMSInstanceId: instanceId, ...extra });
  const created = await createKey({ Description: 'node' });
  const keyId = created.KeyMetadata.KeyId;
  out.created = created.KeyMetadata;
  out.described = (await kms.describeKey(new Kms.DescribeKeyRequest({ keyId }))).keyMetadata;
  out.listed = (await kms.listKeys(new Kms.ListKeysRequest({ pageSize: 100 }))).totalCount;

  const context = { purpose: 'node', 'tenant.id': '7' };
  const plaintext = Buffer.from('hello from node').toString('base64');
  const plain = await kms.encrypt(new Kms.EncryptRequest({ keyId, plaintext }));
  out.decryptedPlain = (await kms.decrypt(new Kms.DecryptRequest({ ciphertextBlob: plain.ciphertextBlob }))).plaintext;
  // The SDK sends the map flattened: EncryptionContext.purpose=node&EncryptionContext.tenant.id=7.
  const bound = await kms.encrypt(new Kms.EncryptRequest({ keyId, plaintext, encryptionContext: context }));
  out.boundBlob = bound.ciphertextBlob;
  out.decryptedBound = (await kms.decrypt(new Kms.DecryptRequest({
    ciphertextBlob: bound.ciphertextBlob, encryptionContext: context,
  }))).plaintext;
  out.wrongContext = await refusal(() => kms.decrypt(new Kms.DecryptRequest({
    ciphertextBlob: bound.ciphertextBlob, encryptionContext: { purpose: 'other' },
  })));
  const dataKey = await kms.generateDataKey(new Kms.GenerateDataKeyRequest({ keyId, encryptionContext: context }));
  out.dataKey = { plaintext: dataKey.plaintext, blob: dataKey.ciphertextBlob };
  out.dataKeyOpened = (await kms.decrypt(new Kms.DecryptRequest({
    ciphertextBlob: dataKey.ciphertextBlob, encryptionContext: context,
  }))).plaintext;

  const alias = 'alias/node-' + keyId.slice(-8);
  await kms.createAlias(new Kms.CreateAliasRequest({ keyId, aliasName: alias }));
  out.byAlias = (await kms.describeKey(new Kms.DescribeKeyRequest({ keyId: alias }))).keyMetadata.keyId;
  out.aliases = (await kms.listAliasesByKeyId(new Kms.ListAliasesByKeyIdRequest({ keyId }))).aliases.alias
    .map((a) => a.aliasName);

  await kms.disableKey(new Kms.DisableKeyRequest({ keyId }));
  out.disabledState = (await kms.describeKey(new Kms.DescribeKeyRequest({ keyId }))).keyMetadata.keyState;
  out.encryptWhileDisabled = await refusal(() => kms.encrypt(new Kms.EncryptRequest({ keyId, plaintext })));
  await kms.enableKey(new Kms.EnableKeyRequest({ keyId }));
  await kms.scheduleKeyDeletion(new Kms.ScheduleKeyDeletionRequest({ keyId, pendingWindowInDays: 7 }));
  out.scheduledState = (await kms.describeKey(new Kms.DescribeKeyRequest({ keyId }))).keyMetadata.keyState;
  await kms.cancelKeyDeletion(new Kms.CancelKeyDeletionRequest({ keyId }));
  out.cancelledState = (await kms.describeKey(new Kms.DescribeKeyRequest({ keyId }))).keyMetadata.keyState;

  const pair = await createKey({ KeySpec: 'EC_P256', KeyUsage: 'SIGN/VERIFY' });
  const pairId = pair.KeyMetadata.KeyId;
  const versionId = pair.KeyMetadata.PrimaryKeyVersion;
  const digest = require('crypto').createHash('sha256').update('signed by node').digest('base64');
  const signed = await kms.asymmetricSign(new Kms.AsymmetricSignRequest({
    keyId: pairId, keyVersionId: versionId, algorithm: 'ECDSA_SHA_256', digest,
  }));
  out.verified = (await kms.asymmetricVerify(new Kms.AsymmetricVerifyRequest({
    keyId: pairId, keyVersionId: versionId, algorithm: 'ECDSA_SHA_256', digest, value: signed.value,
  }))).value;
  out.publicKey = (await kms.getPublicKey(new Kms.GetPublicKeyRequest({ keyId: pairId, keyVersionId: versionId })))
    .publicKey;
  out.signature = signed.value;
  out.digest = digest;

  out.missingKey = await refusal(() => kms.describeKey(new Kms.DescribeKeyRequest({
    keyId: '00000000-0000-4000-8000-000000000000',
  })));
  out.badWindow = await refusal(() => kms.scheduleKeyDeletion(new Kms.ScheduleKeyDeletionRequest({
    keyId, pendingWindowInDays: 1,
  })));
  out.keyId = keyId;
  process.stdout.write(JSON.stringify(out));
}

main().catch((err) => {
  process.stderr.write(`${err.code || ''} ${err.stack || err}\n`);
  process.exit(1);
});
