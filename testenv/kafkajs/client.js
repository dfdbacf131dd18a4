// client.js talks to winback only as an outside Node.js program would:
// KafkaJS for Kafka and @kafkajs/confluent-schema-registry (avsc) for the
// Confluent-framed Avro. cmd/winback's TestProducerStyles runs it.
//
//   node client.js produce BROKER REGISTRY TOPIC=AVSC...  < records
//   node client.js consume BROKER REGISTRY TOPIC COUNT     > values
//
// produce reads one JSON object per line: {"topic", "key" (null for
// none), "value" (an event, Avro-encoded with the topic's schema) or "raw"
// (base64, sent as it is; null when value is given)}, and {"end": "commit"} or {"end": "abort"},
// which ends the transaction in progress (a new one starts with the next
// record). It registers each AVSC under TOPIC-value first, places the
// records with KafkaJS's default partitioner (murmur2, as Java's; a record
// with no key goes round-robin) and sends them in gzip batches through a
// transactional producer.
//
// consume reads COUNT records of TOPIC from the start, read_committed, in
// a consumer group of its own, decodes each value through the registry and
// prints {"partition", "offset", "key", "value"} per line.
'use strict';

const fs = require('fs');
const readline = require('readline');
const { Kafka, CompressionTypes, logLevel } = require('kafkajs');
const { SchemaRegistry, SchemaType } = require('@kafkajs/confluent-schema-registry');

function fail(msg) {
  process.stderr.write(`kafkajs client: ${msg}\n`);
  process.exit(1);
}

async function produce(kafka, registry, schemas) {
  const ids = {};
  for (const arg of schemas) {
    const eq = arg.indexOf('=');
    const topic = arg.slice(0, eq);
    const schema = fs.readFileSync(arg.slice(eq + 1), 'utf8');
    ({ id: ids[topic] } = await registry.register({ type: SchemaType.AVRO, schema }, { subject: `${topic}-value` }));
  }
  const producer = kafka.producer({ transactionalId: 'kafkajs-upstream', idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  let byTopic = new Map();
  let sent = 0;
  const end = async (how) => {
    if (byTopic.size === 0 && how === 'commit') return;
    const txn = await producer.transaction();
    const topicMessages = [...byTopic].map(([topic, messages]) => ({ topic, messages }));
    if (topicMessages.length > 0) await txn.sendBatch({ topicMessages, compression: CompressionTypes.GZIP });
    if (how === 'abort') await txn.abort(); else await txn.commit();
    byTopic = new Map();
  };
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of lines) {
    if (line === '') continue;
    const r = JSON.parse(line);
    if (r.end) {
      await end(r.end);
      continue;
    }
    let value;
    if (r.raw != null) {
      value = Buffer.from(r.raw, 'base64');
    } else {
      if (ids[r.topic] === undefined) fail(`no schema for topic ${r.topic}`);
      value = await registry.encode(ids[r.topic], r.value);
    }
    if (!byTopic.has(r.topic)) byTopic.set(r.topic, []);
    byTopic.get(r.topic).push({ key: r.key, value });
    sent++;
  }
  await end('commit');
  await producer.disconnect();
  process.stderr.write(`kafkajs client: produced ${sent} records\n`);
}

async function consume(kafka, registry, topic, count) {
  if (!(count > 0)) fail(`consume: count ${count}: want at least 1`);
  const consumer = kafka.consumer({ groupId: `kafkajs-${topic}-${process.pid}`, readUncommitted: false });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  let seen = 0;
  await new Promise((resolve, reject) => {
    // A consumer that cannot go on (a batch it cannot decompress, say)
    // crashes without restarting: fail with its error.
    consumer.on(consumer.events.CRASH, (e) => {
      if (!e.payload.restart) reject(e.payload.error);
    });
    consumer.run({
      eachMessage: async ({ partition, message }) => {
        const value = await registry.decode(message.value);
        const key = message.key === null ? null : message.key.toString();
        process.stdout.write(JSON.stringify({ partition, offset: message.offset, key, value }) + '\n');
        if (++seen === count) resolve();
      },
    }).catch(reject);
  });
  await consumer.disconnect();
}

async function main() {
  const [cmd, broker, registryURL, ...rest] = process.argv.slice(2);
  if (!cmd || !broker || !registryURL) fail('usage: client.js produce|consume BROKER REGISTRY ...');
  const kafka = new Kafka({ clientId: 'kafkajs-outside', brokers: [broker], logLevel: logLevel.ERROR, retry: { retries: 10 } });
  const registry = new SchemaRegistry({ host: registryURL });
  switch (cmd) {
    case 'produce':
      return produce(kafka, registry, rest);
    case 'consume':
      return consume(kafka, registry, rest[0], Number(rest[1]));
    default:
      fail(`unknown command ${cmd}`);
  }
}

main().then(() => process.exit(0), (err) => fail(err && err.stack ? err.stack : String(err)));
