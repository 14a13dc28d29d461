import { InputError } from "../../errors.ts";

/** A GIF that cannot be decoded: 400 with `param: "image"` and the reason. */
export function corruptGif(reason: string): InputError {
  return new InputError("invalid_request", `could not decode the GIF image: ${reason}`, "image");
}
