# Build stage: compile TypeScript with the dev dependencies.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY . .
RUN npm run build

# Runtime stage: production dependencies and the compiled output only, as a non-root user.
FROM node:20-bookworm-slim
LABEL org.opencontainers.image.title="portcullis" \
  org.opencontainers.image.description="Residential forward proxy with team API keys: control plane, proxy nodes, stand-in exits" \
  org.opencontainers.image.version="0.1.0" \
  org.opencontainers.image.documentation="README.md, section Scaling out"
ENV NODE_ENV=production HOST=0.0.0.0 DATA_DIR=/data
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force \
  && mkdir /data && chown node:node /data
COPY --from=build /app/dist ./dist
USER node
VOLUME /data
EXPOSE 8080 8000 9091
# Whatever the command, /healthz on PORT or METRICS_PORT (see bin/healthcheck.ts).
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 CMD ["node", "dist/bin/portcullis.js", "healthcheck"]
ENTRYPOINT ["node", "dist/bin/portcullis.js"]
CMD ["start"]
