/** Every Node test process decodes images with the same WASM decoders the vision worker imports. */
import { provideImageCodecsForNode } from "../../shared/image/codecs-node.ts";

await provideImageCodecsForNode();
