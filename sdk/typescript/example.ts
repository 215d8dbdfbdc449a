// etcd's v3 API from Node with a client typed from etcdpy's OpenAPI document:
// openapi-typescript turns openapi/openapi.json into etcdpy.d.ts, openapi-fetch makes the calls.
//   npm install && npm run generate && npm run build && node dist/example.js http://localhost:2379
import createClient from "openapi-fetch";
import type { paths } from "./etcdpy.js";

declare const process: { argv: string[]; exitCode?: number };

const b64 = (text: string): string => btoa(text);
const unb64 = (data: string | undefined): string => (data ? atob(data) : "");

async function main(baseUrl: string): Promise<void> {
  const etcd = createClient<paths>({ baseUrl });

  const put = await etcd.POST("/v3/kv/put", { body: { key: b64("ts/greeting"), value: b64("hello from node") } });
  if (put.error) throw new Error(`put: ${put.error.message}`);
  const revision: string | undefined = put.data.header?.revision; // int64 as a decimal string

  const range = await etcd.POST("/v3/kv/range", { body: { key: b64("ts/"), range_end: b64("ts0") } });
  if (range.error) throw new Error(`range: ${range.error.message}`);
  const kvs = (range.data.kvs ?? []).map((kv) => ({ key: unb64(kv.key), value: unb64(kv.value),
                                                      mod_revision: kv.mod_revision }));

  const bad = await etcd.POST("/v3/kv/range", { body: { key: b64("x"), revision: "999999" } });
  console.log(JSON.stringify({ revision, count: range.data.count, kvs, error: bad.error }));
}

main(process.argv[2] ?? "http://localhost:2379").catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
