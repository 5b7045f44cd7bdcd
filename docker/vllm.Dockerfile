# The same adapter on vLLM: the official OpenAI-compatible image with the base model and the
# PEFT folder baked in. Untested here: this machine has no docker and no GPU (docs/serving.md).
#   docker build -f docker/vllm.Dockerfile -t vllm-inventory --build-arg BASE=runs/base --build-arg ADAPTER=runs/adapter .
#   docker run --gpus all -p 8000:8000 vllm-inventory
# Pin the tag you validated; the flags below exist in vLLM 0.6 and later.
FROM vllm/vllm-openai:v0.9.2
ARG BASE=runs/base
ARG ADAPTER=runs/adapter
COPY ${BASE} /models/base
COPY ${ADAPTER} /models/inventory
# Runtime /v1/load_lora_adapter (GRPO pushing new weights) needs this in vLLM; lathe has it on.
ENV VLLM_ALLOW_RUNTIME_LORA_UPDATING=True
EXPOSE 8000
ENTRYPOINT ["vllm", "serve", "/models/base", "--host", "0.0.0.0", "--port", "8000"]
CMD ["--served-model-name", "base", "--enable-lora", "--lora-modules", "inventory=/models/inventory", \
     "--max-lora-rank", "16", "--max-loras", "1"]
