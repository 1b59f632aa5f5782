// Errors of the image pipeline. Each one carries a message meant for the user:
// a single line that says what went wrong and, where it helps, what to do.
// The CLI prints the message as is; code can branch on the class.

/** Base of every error the image pipeline raises on purpose. */
export class ImageError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The text is not a valid image reference (`alpine`, `host:5000/repo:tag`, `repo@sha256:…`). */
export class InvalidReferenceError extends ImageError {}

/** A manifest or index is malformed, of an unsupported kind, or not a container image. */
export class ManifestError extends ImageError {}

/** An index holds no image for the platform we run on. */
export class PlatformNotFoundError extends ImageError {}

/** The registry does not know the repository (404 NAME_UNKNOWN). */
export class ImageNotFoundError extends ImageError {}

/** The repository exists but has no such tag or manifest digest (404 MANIFEST_UNKNOWN). */
export class TagNotFoundError extends ImageError {}

/** DNS failure, refused connection, TLS failure or timeout, after retries. */
export class RegistryUnreachableError extends ImageError {}

/** The registry or its token server refused us (401/403), or asked for credentials we lack. */
export class AuthenticationError extends ImageError {}

/** Content whose sha256 or size differs from what the manifest or registry promised. */
export class DigestMismatchError extends ImageError {}

/** A response larger than we are willing to read (a manifest over 4 MiB, a blob over its size). */
export class TooLargeError extends ImageError {}

/** Any other answer from a registry we cannot use: unexpected status, rate limiting, bad redirect. */
export class RegistryError extends ImageError {}
