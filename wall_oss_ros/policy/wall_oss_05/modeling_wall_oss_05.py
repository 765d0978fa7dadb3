"""WALL-OSS-0.5: Qwen2.5-VL (transformers' vision tower and rotary embedding) with a narrower action expert.

Where it differs from the flow family (policy/wall_oss): every decoder layer has one set of norms, one fused
q/k/v projection (with bias; rows [Q heads | K heads | V heads]) and one output projection *per expert*, the
two experts' tokens meeting in one joint attention; expert e reads and writes only the first dim_inputs[e]
features of the residual stream (the action expert 1024 of 2048: its tokens keep zeros beyond). Attention is
plain causal, action tokens included. The state is prompt text (processor_wall_oss_05), so the action head has
no proprioception projection, and the head's output is the flow velocity, integrated with Euler steps over
linspace(0, 1, N + 1) · s. RMSNorm multiplies by its weight in float32 before rounding, as the release does.
Module names are the checkpoint's (`model.layers.N.self_attn.qkv_proj_experts.E`, `model.norms.E`, …), so its
safetensors load without renaming; the vision MLP keeps transformers' unfused gate/up/down, as stored.

Sampling computes the prefix (vision, prompt, state text) once and keeps its keys and values: under the causal
mask no prefix token sees an action token, so the cache is exact; each denoising step runs only the 32 action
tokens through the action expert. The full recompute (what LeRobot's port does) stays selectable as reference.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional
from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import (
    Qwen2_5_VisionTransformerPretrainedModel,
    Qwen2_5_VLRotaryEmbedding,
    apply_rotary_pos_emb,
    repeat_kv,
)

from wall_oss_ros.policy.rtc import RtcGuide
from wall_oss_ros.policy.wall_oss.modeling_wall_oss import RopeIndex, SinusoidalTimeEmbedding, integrate, routed
from wall_oss_ros.policy.wall_oss_05.configuration_wall_oss_05 import WallOss05Config

VLM, ACTION = 0, 1  # expert (token type) of every token but the <|action|> ones, and of those


class KvCache:
    """Per layer, the keys and values (after rotary) of the tokens run so far. Growing: each pass appends its
    own (the prefix pass, text decoding); frozen: a pass reads them and keeps its own out (a denoising step)."""

    def __init__(self) -> None:
        self.layers: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.growing = True

    def extend(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if layer < len(self.layers):
            k, v = torch.cat([self.layers[layer][0], k], dim=2), torch.cat([self.layers[layer][1], v], dim=2)
            if self.growing:
                self.layers[layer] = (k, v)
        elif self.growing:
            self.layers.append((k, v))
        else:
            raise RuntimeError(f"layer {layer} has no cached prefix")
        return k, v


class RmsNorm(nn.Module):
    def __init__(self, width: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(width))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.float()
        h = h * torch.rsqrt(h.square().mean(dim=-1, keepdim=True) + self.eps)
        return (self.weight * h).to(x.dtype)


class FusedMlp(nn.Module):
    def __init__(self, width: int, intermediate: int) -> None:
        super().__init__()
        self.gate_up_proj = nn.Linear(width, 2 * intermediate, bias=False)  # rows: gate, then up
        self.down_proj = nn.Linear(intermediate, width, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up_proj(x.to(self.gate_up_proj.weight.dtype)).chunk(2, dim=-1)
        return self.down_proj(functional.silu(gate) * up)


class JointAttention(nn.Module):
    def __init__(self, config: WallOss05Config) -> None:
        super().__init__()
        text = config.text
        self.heads, self.kv_heads, self.head_dim = int(text.num_attention_heads), int(text.num_key_value_heads), \
            config.head_dim
        self.widths = config.dim_inputs
        qkv = (self.heads + 2 * self.kv_heads) * self.head_dim
        self.qkv_proj_experts = nn.ModuleList(nn.Linear(w, qkv, bias=True) for w in self.widths)
        self.o_proj_experts = nn.ModuleList(nn.Linear(config.hidden_size, w, bias=False) for w in self.widths)

    def forward(self, h: torch.Tensor, types: torch.Tensor | int, allowed: torch.Tensor,
                rotary: tuple[torch.Tensor, torch.Tensor], cache: KvCache | None, layer: int) -> torch.Tensor:
        """allowed: (B, Lq, Lk) bool, True = may attend; with a cache, keys are the cached tokens' and then
        this pass's."""
        b, length, _ = h.shape
        qkv = routed(self.qkv_proj_experts, self.widths, h, types, self.qkv_proj_experts[0].out_features)
        qkv = qkv.view(b, length, self.heads + 2 * self.kv_heads, self.head_dim).transpose(1, 2)
        q, k, v = qkv.split((self.heads, self.kv_heads, self.kv_heads), dim=1)
        q, k = apply_rotary_pos_emb(q, k, *rotary)
        if cache is not None:
            k, v = cache.extend(layer, k, v)
        groups = self.heads // self.kv_heads
        dtype = self.qkv_proj_experts[0].weight.dtype
        out = functional.scaled_dot_product_attention(q.to(dtype), repeat_kv(k, groups).to(dtype),
                                                      repeat_kv(v, groups).to(dtype), attn_mask=allowed[:, None])
        out = out.transpose(1, 2).reshape(b, length, self.heads * self.head_dim)
        return routed(self.o_proj_experts, self.widths, out, types, h.shape[-1], read_all=True)


class DecoderLayer(nn.Module):
    def __init__(self, config: WallOss05Config) -> None:
        super().__init__()
        eps, widths = float(config.text.rms_norm_eps), config.dim_inputs
        self.input_layernorms = nn.ModuleList(RmsNorm(w, eps) for w in widths)
        self.post_attention_layernorms = nn.ModuleList(RmsNorm(w, eps) for w in widths)
        self.self_attn = JointAttention(config)
        self.moe = nn.Module()
        self.moe.experts = nn.ModuleList(FusedMlp(int(e["hidden_size"]), int(e["intermediate_size"]))
                                         for e in config.experts)
        self.widths = widths

    def forward(self, h: torch.Tensor, types: torch.Tensor | int, allowed: torch.Tensor,
                rotary: tuple[torch.Tensor, torch.Tensor], cache: KvCache | None, layer: int) -> torch.Tensor:
        width = h.shape[-1]
        normed = routed(self.input_layernorms, self.widths, h, types, width)
        h = h + self.self_attn(normed, types, allowed, rotary, cache, layer).to(h.dtype)
        normed = routed(self.post_attention_layernorms, self.widths, h, types, width)
        return h + routed(self.moe.experts, self.widths, normed, types, width).to(h.dtype)


class Decoder(nn.Module):
    def __init__(self, config: WallOss05Config) -> None:
        super().__init__()
        text = config.text
        self.embed_tokens = nn.Embedding(int(text.vocab_size), config.hidden_size)
        self.layers = nn.ModuleList(DecoderLayer(config) for _ in range(int(text.num_hidden_layers)))
        self.norms = nn.ModuleList(RmsNorm(w, float(text.rms_norm_eps)) for w in config.dim_inputs)
        self.rotary_emb = Qwen2_5_VLRotaryEmbedding(config=text)
        self.widths = config.dim_inputs

    def forward(self, embeds: torch.Tensor, positions: torch.Tensor, allowed: torch.Tensor,
                types: torch.Tensor | int, cache: KvCache | None = None) -> torch.Tensor:
        rotary = self.rotary_emb(embeds, positions)
        h = embeds
        for i, layer in enumerate(self.layers):
            h = layer(h, types, allowed, rotary, cache, i)
        return routed(self.norms, self.widths, h, types, h.shape[-1])


class ActionHead(nn.Module):
    """Noisy action ‖ DOF mask → w1; ‖ sinusoidal time → w2, silu, w3; padded to the model's width. The
    output projection gives the velocity from the action expert's features."""

    def __init__(self, config: WallOss05Config) -> None:
        super().__init__()
        width, action = config.action_hidden_size, config.action_dim
        self.hidden_size = config.hidden_size
        self.time_embed = SinusoidalTimeEmbedding(width)
        self.w1 = nn.Linear(2 * action, width, bias=False)
        self.w2 = nn.Linear(2 * width, width, bias=False)
        self.w3 = nn.Linear(width, width, bias=False)
        self.action_proj_back = nn.Linear(width, action, bias=False)

    def embed(self, noisy: torch.Tensor, t: torch.Tensor, dof_mask: torch.Tensor) -> torch.Tensor:
        action = self.w1(torch.cat([noisy.float(), dof_mask.float()], dim=-1).to(self.w1.weight.dtype))
        time = self.time_embed(t).to(self.w2.weight.dtype)[:, None, :].expand(-1, action.shape[1], -1)
        h = self.w3(functional.silu(self.w2(torch.cat([action, time], dim=-1))))
        return functional.pad(h, (0, self.hidden_size - h.shape[-1]))

    def velocity(self, hidden: torch.Tensor) -> torch.Tensor:
        width = self.action_proj_back.in_features
        return self.action_proj_back(hidden[..., :width].float().to(self.action_proj_back.weight.dtype)).float()


def causal_mask(query_valid: torch.Tensor, key_valid: torch.Tensor, offset: int = 0) -> torch.Tensor:
    """(B, Lq, Lk) True = may attend: keys at or before the query (query i at offset + i), real tokens only.
    A padding query may see itself (a row with nothing allowed is NaN in some kernels; nothing reads it)."""
    lq, lk = query_valid.shape[1], key_valid.shape[1]
    q_pos = torch.arange(lq, device=query_valid.device)[:, None] + offset
    k_pos = torch.arange(lk, device=query_valid.device)[None, :]
    allowed = (k_pos <= q_pos)[None] & key_valid[:, None, :].bool() & query_valid[:, :, None].bool()
    return allowed | ((k_pos == q_pos)[None] & ~query_valid[:, :, None].bool())


@dataclass
class Inputs05:
    """Tokenised, batched inputs of one inference (processor_wall_oss_05): the state is in the text."""

    input_ids: torch.Tensor  # (B, L), left-padded
    attention_mask: torch.Tensor  # (B, L), 1 = real token
    pixel_values: torch.Tensor | None  # (patches, C·T·P·P) as Qwen's image processor returns
    image_grid_thw: torch.Tensor | None  # (images, 3)
    dof_mask: torch.Tensor  # (B, H, 26): 1 = real action dimension


class WallOss05ForAction(nn.Module):
    def __init__(self, config: WallOss05Config, action_token_id: int) -> None:
        super().__init__()
        self.config, self.action_token_id = config, action_token_id
        self.visual = Qwen2_5_VisionTransformerPretrainedModel(config.vision)
        self.model = Decoder(config)
        self.lm_head = nn.Linear(config.hidden_size, int(config.text.vocab_size), bias=False)
        self.lm_head.weight = self.model.embed_tokens.weight  # tied; the checkpoint stores the embedding
        self.action_preprocessor = ActionHead(config)
        self._rope = RopeIndex(config.vision)

    def embed_inputs(self, inputs: Inputs05) -> torch.Tensor:
        ids = inputs.input_ids
        embeds = self.model.embed_tokens(ids)
        if inputs.pixel_values is None:
            return embeds
        images = self.visual(inputs.pixel_values.to(self.visual.patch_embed.proj.weight.dtype),
                             grid_thw=inputs.image_grid_thw).pooler_output
        slots = ids == self.config.image_token_id
        if int(slots.sum()) != images.shape[0]:
            raise ValueError(f"{int(slots.sum())} image tokens but {images.shape[0]} image features")
        return embeds.masked_scatter(slots[..., None], images.to(embeds.dtype))

    def rope_positions(self, inputs: Inputs05) -> torch.Tensor:
        return self._rope(inputs.input_ids, self.config.image_token_id, inputs.image_grid_thw, inputs.attention_mask)

    def times(self, steps: int, device: torch.device) -> torch.Tensor:
        t = torch.linspace(0.0, 1.0, steps + 1, device=device, dtype=torch.float32)
        shift = self.config.time_shift
        if shift != 1.0:
            t = shift * t / (1 + (shift - 1) * t)
        return t * self.config.noise_s

    def generate_tokens(self, inputs: Inputs05, max_new_tokens: int, stop_ids: set[int]) -> list[int]:
        """Greedy decoding through the vision-language expert after the prompt, with a KV cache."""
        embeds, positions, valid = self.embed_inputs(inputs), self.rope_positions(inputs), inputs.attention_mask
        cache = KvCache()
        hidden = self.model(embeds, positions, causal_mask(valid, valid), VLM, cache)
        next_position = int(positions.max()) + 1
        out: list[int] = []
        one = torch.ones(1, 1, dtype=valid.dtype, device=valid.device)
        for _ in range(max_new_tokens):
            token = int(self.lm_head(hidden[:, -1].to(self.lm_head.weight.dtype)).argmax(dim=-1)[0])
            if token in stop_ids:
                break
            out.append(token)
            valid = torch.cat([valid, one], dim=1)
            step = torch.full((3, 1, 1), next_position, dtype=positions.dtype, device=positions.device)
            step_embeds = self.model.embed_tokens(torch.tensor([[token]], device=valid.device))
            hidden = self.model(step_embeds, step, causal_mask(one, valid, valid.shape[1] - 1), VLM, cache)
            next_position += 1
        return out

    def sample_actions(self, inputs: Inputs05, noise: torch.Tensor, steps: int, use_prefix_cache: bool = True,
                       rtc: RtcGuide | None = None) -> torch.Tensor:
        """Euler-integrate the flow from noise to normalised actions: (B, H, 26). With rtc, each velocity gets
        the guided-inpainting correction (call under torch.no_grad(), not inference_mode, then)."""
        ids, valid = inputs.input_ids, inputs.attention_mask
        action_slots = ids == self.action_token_id
        horizon = noise.shape[1]
        counts = action_slots.sum(dim=1)
        if not bool((counts == horizon).all()):
            raise ValueError(f"{counts.tolist()} <|action|> tokens for a horizon of {horizon}")
        first = ids.shape[1] - horizon
        if not bool(action_slots[:, first:].all()):
            raise ValueError("<|action|> tokens must close the sequence (left padding; the prefix cache relies on it)")
        embeds, positions = self.embed_inputs(inputs), self.rope_positions(inputs)
        head = self.action_preprocessor

        if use_prefix_cache:
            cache = KvCache()
            self.model(embeds[:, :first], positions[:, :, :first], causal_mask(valid[:, :first], valid[:, :first]),
                       VLM, cache)
            cache.growing = False
            step_positions = positions[:, :, first:]
            step_mask = causal_mask(valid[:, first:], valid, first)

            def velocity(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
                hidden = self.model(head.embed(x, t, inputs.dof_mask).to(embeds.dtype), step_positions, step_mask,
                                    ACTION, cache)
                return head.velocity(hidden)
        else:
            types = action_slots.long()
            full_mask = causal_mask(valid, valid)

            def velocity(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
                step_embeds = embeds.masked_scatter(action_slots[..., None],
                                                    head.embed(x, t, inputs.dof_mask).to(embeds.dtype))
                hidden = self.model(step_embeds, positions, full_mask, types)
                return head.velocity(hidden[:, first:])

        return integrate(noise, self.times(steps, noise.device), velocity, rtc)
