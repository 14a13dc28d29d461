import { InputError } from "../../errors.ts";

/** A PNG that cannot be decoded: 400 with `param: "image"` and the reason. */
export function corruptPng(reason: string): InputError {
  return new InputError("invalid_request", `could not decode the PNG image: ${reason}`, "image");
}
