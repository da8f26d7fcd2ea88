// transformers.js' own generate() on the same model directory: the library a
// user would otherwise reach for. Local files only, fp32, the same intra-op
// thread count. Concurrency means independent generate() calls in flight at
// once on one loaded model, as a server built on the library would run them.
import { readdir } from 'node:fs/promises';
import { chooseGraph, DTYPE_SUFFIXES } from '../../engine/model-files.js';
import path from 'node:path';
import { BenchError } from '../errors.js';
import type { Completed, ModeDriver, Workload } from '../types.js';

interface Tensor { dims: number[]; data: ArrayLike<bigint | number> }
interface Tokenizer {
  (text: string): { input_ids: Tensor; attention_mask: Tensor };
  decode(ids: number[] | bigint[], opts: { skip_special_tokens: boolean }): string;
}
interface CausalLM {
  generate(args: Record<string, unknown>): Promise<unknown>;
  dispose?(): Promise<unknown>;
}

/**
 * transformers.js picks a graph by dtype (model_q4.onnx is 'q4') and needs to be told how many
 * external data files it has (model.onnx_data, model.onnx_data_1, ...).
 */
async function transformersJsChoice(modelDir: string, modelFile?: string): Promise<{ dtype: string; externalData: boolean | number }> {
  const graph = await chooseGraph(modelDir, modelFile);
  const dtype = Object.keys(DTYPE_SUFFIXES).find((d) => `model${DTYPE_SUFFIXES[d]}.onnx` === graph);
  if (dtype === undefined) throw new BenchError('mode_unavailable', `transformers-js names graphs by dtype; onnx/${graph} is none of them`);
  const names = await readdir(path.join(modelDir, 'onnx'));
  const chunks = names.filter((n) => n === `${graph}_data` || new RegExp(`^${graph.replace('.', '\\.')}_data_\\d+$`).test(n)).length;
  return { dtype, externalData: chunks === 0 ? false : chunks === 1 ? true : chunks };
}

export async function createTransformersJsDriver(opts: { modelDir: string; modelFile?: string; threads: number }): Promise<ModeDriver> {
  // A development dependency: the comparison is for a checkout, and production carries neither
  // transformers.js nor the ONNX Runtime Web and sharp it brings.
  let tf: typeof import('@huggingface/transformers');
  try {
    tf = await import('@huggingface/transformers');
  } catch (err) {
    throw new BenchError('mode_unavailable', 'transformers-js needs @huggingface/transformers, a development dependency: run the bench from a checkout after npm ci', { cause: err });
  }
  // Never reach for the network: a missing file must fail, not download.
  tf.env.allowRemoteModels = false;
  tf.env.allowLocalModels = true;
  tf.env.localModelPath = path.dirname(path.resolve(opts.modelDir)) + path.sep;
  const id = path.basename(path.resolve(opts.modelDir));
  let tokenizer: Tokenizer;
  let model: CausalLM;
  const choice = await transformersJsChoice(opts.modelDir, opts.modelFile);
  try {
    tokenizer = (await tf.AutoTokenizer.from_pretrained(id)) as unknown as Tokenizer;
    model = (await tf.AutoModelForCausalLM.from_pretrained(id, {
      dtype: choice.dtype as 'fp32',
      use_external_data_format: choice.externalData,
      session_options: { intraOpNumThreads: opts.threads, interOpNumThreads: 1 },
    })) as unknown as CausalLM;
  } catch (err) {
    throw new BenchError('mode_unavailable', 'transformers-js could not load the model directory', { cause: err });
  }
  const encoded = new Map<string, ReturnType<Tokenizer>>();

  return {
    name: 'transformers-js',
    async request(work: Workload, onToken: () => void, wantText = false): Promise<Completed> {
      let inputs = encoded.get(work.prompt);
      if (inputs === undefined) {
        inputs = tokenizer(work.prompt);
        encoded.set(work.prompt, inputs);
      }
      const promptLen = inputs.input_ids.dims[1];
      // The streamer's first put() is the prompt itself; every later one is a new token.
      let seenPrompt = false;
      const streamer = new (class extends tf.BaseStreamer {
        override put(): void {
          if (seenPrompt) onToken();
          seenPrompt = true;
        }
        override end(): void {}
      })();
      const out = (await model.generate({
        ...inputs, max_new_tokens: work.maxTokens, do_sample: false, streamer,
      })) as Tensor;
      const tokens = out.dims[1] - promptLen;
      if (!wantText) return { tokens, promptTokens: promptLen };
      // Decoding is the caller's extra, outside the streamed timings that matter (TTFT, ITL).
      const ids = Array.from(out.data as ArrayLike<bigint>).slice(promptLen);
      return { tokens, text: tokenizer.decode(ids, { skip_special_tokens: true }), promptTokens: promptLen };
    },
    async close(): Promise<void> {
      await model.dispose?.();
    },
  };
}
