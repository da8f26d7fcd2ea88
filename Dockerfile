# syntax=docker/dockerfile:1
#
# sealed-inference: the production container. It runs compiled JavaScript only
# (no TypeScript compiler or loader at run time), as a non-root user, needs no
# writable path (run it with --read-only and no volume), and refuses to start
# outside an SEV-SNP or TDX guest unless SEALED_PLATFORM=simulated is set.
#
#   docker build -t sealed-inference .
#   docker run --rm --read-only -p 8080:8080 -e SEALED_PLATFORM=simulated sealed-inference
#   # in a confidential VM: pass the guest device, e.g. --device /dev/sev-guest (SEV-SNP)
#   # or --device /dev/tdx_guest (TDX), readable by uid 10001 (see docs/DEPLOY.md).
#
# The base image is pinned by digest, never by tag alone. This digest is the
# node:20-bookworm-slim multi-arch index digest as published on Docker Hub and
# pinned in other public projects; it could not be checked against the registry
# from the machine this file was written on. Refresh it deliberately with
#   docker buildx imagetools inspect node:20-bookworm-slim
# and review the change like any dependency bump.
ARG NODE_IMAGE=node:20-bookworm-slim@sha256:2cf067cfed83d5ea958367df9f966191a942351a2df77d6f0193e162b5febfc0
# The model baked into the image (a directory under models/).
ARG MODEL=stories260K

# --- build: full install (TypeScript and esbuild are dev dependencies), compile to dist/ and
#     bundle the chat page into it (production has no bundler) ---
FROM ${NODE_IMAGE} AS build
ARG MODEL
WORKDIR /src
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build
# The model digest clients will see in every attestation, printed in the build
# log and kept beside the model so operators can publish it with the image.
RUN node deploy/model-digest.mjs "models/${MODEL}" | tee /src/model-digest.txt

# --- deps: production dependencies only, without the TypeScript loader ---
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
COPY deploy/prune-production.sh deploy/prune-production.sh
RUN npm ci --omit=dev --no-audit --no-fund && sh deploy/prune-production.sh .

# --- runtime ---
FROM ${NODE_IMAGE} AS runtime
ARG MODEL
# A dedicated system user with no home and no shell; every file below stays
# owned by root and read-only to it.
RUN groupadd --system --gid 10001 sealed \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin sealed \
 && rm -rf /usr/local/lib/node_modules/npm /usr/local/bin/npm /usr/local/bin/npx /usr/local/lib/node_modules/corepack /usr/local/bin/corepack /root/.npm
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/bin ./bin
COPY --from=build /src/models/${MODEL} ./models/${MODEL}
COPY --from=build /src/model-digest.txt ./models/${MODEL}.digest
ENV NODE_ENV=production \
    ORT_DISABLE_TELEMETRY=1 \
    SEALED_PLATFORM=auto \
    SEALED_MODEL_DIR=/app/models/${MODEL} \
    HOST=0.0.0.0 \
    PORT=8080 \
    HOME=/nonexistent
USER 10001:10001
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/healthz',{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.status===200?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "/app/dist/cli/sealed.js"]
CMD ["serve"]
