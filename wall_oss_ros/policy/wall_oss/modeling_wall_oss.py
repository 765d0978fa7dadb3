"""WALL-OSS model: Qwen2.5-VL (transformers' vision tower, decoder layers, rotary) plus what WALL-OSS adds.

Additions: decoder MLPs hard-routed by token type (type 1, the <|action|> tokens, to the action expert),
bidirectional attention among action tokens with causal attention elsewhere, a proprioception + DOF-mask
embedding, and the flow-matching action head (sinusoidal time embedding; x_t = (1 - t)·noise + t·action
integrated from t = 0 to 1 with Euler steps). Module names follow the official checkpoints (`visual.*`,
`model.layers.N.moe.experts.E.*`, `action_preprocessor.*`) so their safetensors load without renaming.

Sampling computes the vision + language prefix once and keeps its keys/values: the prefix is causal and
comes before the action tokens, so its states never depend on them, and each denoising step runs only the
action tokens. The full-recompute path (what LeRobot does) stays selectable as the reference.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace

import torch
from torch import nn
from transformers.activations import ACT2FN
from transformers.cache_utils import DynamicCache
from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import (
    Qwen2_5_VisionTransformerPretrainedModel,
    Qwen2_5_VLAttention,
    Qwen2_5_VLDecoderLayer,
    Qwen2_5_VLModel,
    Qwen2_5_VLRMSNorm,
    Qwen2_5_VLRotaryEmbedding,
)

from wall_oss_ros.policy.rtc import RtcGuide
from wall_oss_ros.policy.wall_oss.configuration_wall_oss import WallOssConfig

ACTION_TOKEN_TYPE = 1  # moe_token_types value of <|action|> tokens (routed to expert 1)
# transformers renamed the attention's cache argument (past_key_values → cache, the old name goes in 5.40);
# an unknown keyword would be swallowed by **kwargs and silently disable the cache, so ask the signature.
CACHE_KWARG = "cache" if "cache" in inspect.signature(Qwen2_5_VLAttention.forward).parameters else "past_key_values"


class SinusoidalTimeEmbedding(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.dim // 2
        freq = torch.exp(torch.arange(half, device=t.device, dtype=torch.float32) * -(math.log(10000) / (half - 1)))
        angles = t.float()[:, None] * freq[None, :]
        return torch.cat([angles.sin(), angles.cos()], dim=-1)


class ActionHead(nn.Module):
    """Flow-matching head: embeds noisy actions (+ DOF mask + time) and proprioception, projects back."""

    def __init__(self, config: WallOssConfig) -> None:
        super().__init__()
        hidden, action, propri = config.hidden_size, config.action_dim, config.propri_dim
        self.time_embed = SinusoidalTimeEmbedding(hidden)
        self.w1 = nn.Linear(2 * action, hidden, bias=False)  # noisy action ‖ DOF mask
        self.w2 = nn.Linear(2 * hidden, hidden, bias=False)  # action embedding ‖ time embedding
        self.w3 = nn.Linear(hidden, hidden, bias=False)
        self.act_fn = nn.SiLU()
        self.action_proj_back = nn.Linear(hidden, action, bias=False)
        self.propri_proj = nn.Linear(2 * propri, hidden, bias=False)  # state ‖ state mask

    def embed_actions(self, noisy: torch.Tensor, t: torch.Tensor, dof_mask: torch.Tensor) -> torch.Tensor:
        dtype = self.w1.weight.dtype
        action = self.w1(torch.cat([noisy, dof_mask], dim=-1).to(dtype))
        time = self.time_embed(t).to(dtype)[:, None, :].expand(-1, action.shape[1], -1)
        return self.w3(self.act_fn(self.w2(torch.cat([action, time], dim=-1))))

    def velocity(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.action_proj_back(hidden.to(self.action_proj_back.weight.dtype)).float()

    def embed_proprio(self, state: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.propri_proj(torch.cat([state, mask], dim=-1).to(self.propri_proj.weight.dtype))


class ExpertMLP(nn.Module):
    def __init__(self, hidden_size: int, intermediate_size: int, hidden_act: str) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(hidden_size, intermediate_size, bias=False)
        self.up_proj = nn.Linear(hidden_size, intermediate_size, bias=False)
        self.down_proj = nn.Linear(intermediate_size, hidden_size, bias=False)
        self.act_fn = ACT2FN[hidden_act]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))


def routed(modules: nn.ModuleList, widths: tuple[int, ...], x: torch.Tensor, types: torch.Tensor | int,
           out_width: int, read_all: bool = False) -> torch.Tensor:
    """Each token through its expert's module (both families hard-route by token type), reading its first
    widths[e] features of x (all of them with read_all: WALL-OSS-0.5's output projection reads every head);
    the result, in x's dtype, is written into the first features of out_width, zeros elsewhere. types: per
    token, or one int when every token has that type (no masks, no host synchronisation)."""
    if isinstance(types, int):
        y = modules[types](x if read_all else x[..., :widths[types]]).to(x.dtype)
        return y if y.shape[-1] == out_width else torch.nn.functional.pad(y, (0, out_width - y.shape[-1]))
    out = x.new_zeros(*x.shape[:-1], out_width)
    for e, (module, width) in enumerate(zip(modules, widths, strict=True)):
        mask = types == e
        if bool(mask.any()):
            picked = x[mask]
            y = module(picked if read_all else picked[:, :width])
            out[mask, :y.shape[-1]] = y.to(out.dtype)
    return out


class TokenTypeExperts(nn.Module):
    """MLP experts hard-routed by token type; expert e reads and writes the first dim_inputs[e] features."""

    def __init__(self, config: WallOssConfig) -> None:
        super().__init__()
        self.experts = nn.ModuleList(
            ExpertMLP(int(e["hidden_size"]), int(e["intermediate_size"]), str(e.get("hidden_act", "silu")))
            for e in config.experts)
        self.dim_inputs = config.dim_inputs

    def forward(self, hidden: torch.Tensor, token_types: torch.Tensor, uniform_type: int | None = None) -> torch.Tensor:
        types = token_types if uniform_type is None else uniform_type
        return routed(self.experts, self.dim_inputs, hidden, types, hidden.shape[-1])


class WallOssDecoderLayer(Qwen2_5_VLDecoderLayer):
    """transformers' Qwen2.5-VL decoder layer with the MLP replaced by token-type experts.

    Activations are cast to each block's parameter dtype: the layernorms stay float32 while the
    projections run in bfloat16 on the GPU, as the reference keeps them.
    """

    def __init__(self, config: WallOssConfig, layer_idx: int) -> None:
        super().__init__(config.text, layer_idx)
        del self.mlp
        self.moe = TokenTypeExperts(config)

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None,
                position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
                past_key_values: DynamicCache | None = None, token_types: torch.Tensor | None = None,
                uniform_type: int | None = None, **kwargs: object) -> torch.Tensor:
        residual = hidden_states
        h = self.input_layernorm(hidden_states.to(self.input_layernorm.weight.dtype))
        h, _ = self.self_attn(hidden_states=h.to(self.self_attn.q_proj.weight.dtype), attention_mask=attention_mask,
                              position_embeddings=position_embeddings, **{CACHE_KWARG: past_key_values})
        hidden_states = residual + h.to(residual.dtype)
        residual = hidden_states
        h = self.post_attention_layernorm(hidden_states.to(self.post_attention_layernorm.weight.dtype))
        h = self.moe(h.to(self.moe.experts[0].down_proj.weight.dtype), token_types, uniform_type)
        return residual + h.to(residual.dtype)


class WallOssTextModel(nn.Module):
    def __init__(self, config: WallOssConfig) -> None:
        super().__init__()
        text = config.text
        self.embed_tokens = nn.Embedding(text.vocab_size, text.hidden_size)
        self.layers = nn.ModuleList(WallOssDecoderLayer(config, i) for i in range(text.num_hidden_layers))
        self.norm = Qwen2_5_VLRMSNorm(text.hidden_size, eps=text.rms_norm_eps)
        self.rotary_emb = Qwen2_5_VLRotaryEmbedding(config=text)

    def forward(self, embeds: torch.Tensor, position_ids: torch.Tensor, attention_bias: torch.Tensor,
                token_types: torch.Tensor, cache: DynamicCache | None = None,
                uniform_type: int | None = None) -> torch.Tensor:
        """uniform_type: the one token type of every token in this pass, when the caller knows it."""
        position_embeddings = self.rotary_emb(embeds, position_ids)
        hidden = embeds
        for layer in self.layers:
            hidden = layer(hidden, attention_mask=attention_bias.to(hidden.dtype),
                           position_embeddings=position_embeddings, past_key_values=cache, token_types=token_types,
                           uniform_type=uniform_type)
        return self.norm(hidden)  # RMSNorm computes in fp32 and rounds to the stream's dtype, as the reference


def attention_bias(query_types: torch.Tensor, key_types: torch.Tensor, query_offset: int,
                   key_padding: torch.Tensor | None = None) -> torch.Tensor:
    """Additive mask (B, 1, Lq, Lk): causal, except that action tokens see each other both ways.

    Query i sits at absolute position query_offset + i; keys at 0..Lk-1.
    """
    lq, lk = query_types.shape[1], key_types.shape[1]
    q_pos = torch.arange(lq, device=query_types.device)[:, None] + query_offset
    k_pos = torch.arange(lk, device=query_types.device)[None, :]
    causal = (k_pos <= q_pos)[None]
    island = (query_types[:, :, None] == ACTION_TOKEN_TYPE) & (key_types[:, None, :] == ACTION_TOKEN_TYPE)
    allowed = causal | island
    if key_padding is not None:
        allowed = allowed & key_padding[:, None, :].bool()
    bias = torch.zeros(allowed.shape, dtype=torch.float32, device=allowed.device)
    bias.masked_fill_(~allowed, torch.finfo(torch.float32).min)
    return bias[:, None]


class RopeIndex:
    """transformers' Qwen2.5-VL 3-D rope index (text 1-D, images on a temporal/height/width grid; left
    padding at position 1), shared by both families."""

    get_rope_index = Qwen2_5_VLModel.get_rope_index
    get_vision_position_ids = Qwen2_5_VLModel.get_vision_position_ids

    def __init__(self, vision: object) -> None:
        self.config = SimpleNamespace(vision_config=vision)

    def __call__(self, input_ids: torch.Tensor, image_token_id: int, image_grid_thw: torch.Tensor | None,
                 attention_mask: torch.Tensor) -> torch.Tensor:
        mm_types = (input_ids == image_token_id).int()
        positions, _ = self.get_rope_index(input_ids, mm_types, image_grid_thw, None, None, attention_mask)
        return positions


@dataclass
class ModelInputs:
    """Tokenised, batched inputs of one inference (see processor_wall_oss)."""

    input_ids: torch.Tensor  # (B, L)
    attention_mask: torch.Tensor  # (B, L), 1 = real token
    pixel_values: torch.Tensor | None  # (patches, C·T·P·P) as Qwen's image processor returns
    image_grid_thw: torch.Tensor | None  # (images, 3)
    proprio: torch.Tensor  # (B, 1, propri_dim), normalised and zero-padded
    proprio_mask: torch.Tensor  # (B, 1, propri_dim), 1 = real value
    dof_mask: torch.Tensor  # (B, H, action_dim), 1 = real action dimension


def integrate(noise: torch.Tensor, times: torch.Tensor,
              velocity: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], rtc: RtcGuide | None) -> torch.Tensor:
    """Euler steps from the noise along the time grid (both families); with rtc, every velocity gets the
    guided-inpainting correction."""
    x, batch = noise.float(), noise.shape[0]
    for k in range(len(times) - 1):
        t = times[k].expand(batch)
        v = velocity(x, t) if rtc is None else rtc.correct(x, float(times[k]), lambda x_in, t=t: velocity(x_in, t))
        x = x + (times[k + 1] - times[k]) * v
    return x


class WallOssForAction(nn.Module):
    def __init__(self, config: WallOssConfig, action_token_id: int, propri_token_id: int) -> None:
        super().__init__()
        self.config = config
        self.action_token_id, self.propri_token_id = action_token_id, propri_token_id
        self.visual = Qwen2_5_VisionTransformerPretrainedModel(config.vision)
        self.model = WallOssTextModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.text.vocab_size, bias=False)
        if config.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight
        self.action_preprocessor = ActionHead(config)
        self._rope = RopeIndex(config.vision)

    # ------------------------------------------------------------------ inputs
    def embed_inputs(self, inputs: ModelInputs) -> torch.Tensor:
        ids = inputs.input_ids
        embeds = self.model.embed_tokens(ids)
        if inputs.pixel_values is not None:
            visual_dtype = self.visual.patch_embed.proj.weight.dtype
            images = self.visual(inputs.pixel_values.to(visual_dtype), grid_thw=inputs.image_grid_thw).pooler_output
            slots = ids == self.config.image_token_id
            if int(slots.sum()) != images.shape[0]:
                raise ValueError(f"{int(slots.sum())} image tokens but {images.shape[0]} image features")
            embeds = embeds.masked_scatter(slots[..., None], images.to(embeds.dtype))
        slots = ids == self.propri_token_id
        if inputs.proprio.shape[1] == 0 and not bool(slots.any()):
            return embeds  # a prompt without proprioception (the subtask prompt)
        # The state is rounded to the stream's dtype before the (fp32) projection, as the reference does in bf16.
        proprio = self.action_preprocessor.embed_proprio(inputs.proprio.to(embeds.dtype),
                                                         inputs.proprio_mask.to(embeds.dtype))
        if int(slots.sum()) != proprio.shape[0] * proprio.shape[1]:
            raise ValueError(f"{int(slots.sum())} <|propri|> tokens for {proprio.shape[0] * proprio.shape[1]} states")
        return embeds.masked_scatter(slots[..., None], proprio.to(embeds.dtype))

    def rope_positions(self, inputs: ModelInputs) -> torch.Tensor:
        return self._rope(inputs.input_ids, self.config.image_token_id, inputs.image_grid_thw, inputs.attention_mask)

    # ------------------------------------------------------------------ language (Uni-CoT subtask)
    def generate_tokens(self, inputs: ModelInputs, max_new_tokens: int, stop_ids: set[int]) -> list[int]:
        """Greedy decoding after the prompt, with a KV cache; stops at a stop token or max_new_tokens."""
        embeds = self.embed_inputs(inputs)
        positions = self.rope_positions(inputs)
        types = torch.zeros_like(inputs.input_ids)
        cache = DynamicCache(config=self.config.text)
        hidden = self.model(embeds, positions, attention_bias(types, types, 0, inputs.attention_mask), types, cache)
        next_position = int(positions.max()) + 1
        out: list[int] = []
        for _ in range(max_new_tokens):
            token = int(self.lm_head(hidden[:, -1].to(self.lm_head.weight.dtype)).argmax(dim=-1)[0])
            if token in stop_ids:
                break
            out.append(token)
            length = cache.get_seq_length()
            step_types = torch.zeros(1, 1, dtype=types.dtype, device=types.device)
            key_types = torch.zeros(1, length + 1, dtype=types.dtype, device=types.device)
            step_pos = torch.full((3, 1, 1), next_position, dtype=positions.dtype, device=positions.device)
            hidden = self.model(self.model.embed_tokens(torch.tensor([[token]], device=types.device)), step_pos,
                                attention_bias(step_types, key_types, length), step_types, cache)
            next_position += 1
        return out

    # ------------------------------------------------------------------ sampling
    def sample_actions(self, inputs: ModelInputs, noise: torch.Tensor, steps: int, use_prefix_cache: bool = True,
                       rtc: RtcGuide | None = None) -> torch.Tensor:
        """Integrate the flow from noise (t = 0) to normalised actions (t = 1): (B, H, action_dim).

        With rtc, every velocity gets the guided-inpainting correction (autograd through the action tokens
        only: the prefix cache holds no graph). Call it under torch.no_grad(), not inference_mode, then.
        """
        ids = inputs.input_ids
        token_types = (ids == self.action_token_id).long()
        action_slots = token_types == ACTION_TOKEN_TYPE
        counts = action_slots.sum(dim=1)
        horizon = noise.shape[1]
        if not bool((counts == horizon).all()):
            raise ValueError(f"{counts.tolist()} <|action|> tokens for a horizon of {horizon}")
        first = int(action_slots.float().argmax(dim=1).min())
        if not bool(action_slots[:, first:].all()):
            raise ValueError("<|action|> tokens must close the sequence (prefix caching relies on it)")
        embeds = self.embed_inputs(inputs)
        positions = self.rope_positions(inputs)
        head = self.action_preprocessor
        batch, hidden_size = ids.shape[0], embeds.shape[-1]

        if use_prefix_cache:
            cache = DynamicCache(config=self.config.text)
            prefix_types = token_types[:, :first]
            prefix_bias = attention_bias(prefix_types, prefix_types, 0, inputs.attention_mask[:, :first])
            self.model(embeds[:, :first], positions[:, :, :first], prefix_bias, prefix_types, cache, uniform_type=0)
            step_types, step_positions = token_types[:, first:], positions[:, :, first:]
            step_bias = attention_bias(step_types, token_types, first, inputs.attention_mask)

            def velocity(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
                # The head runs in fp32; the residual stream (and the cached keys/values) in the embedding dtype.
                step_embeds = head.embed_actions(x, t, inputs.dof_mask).to(embeds.dtype)
                hidden = self.model(step_embeds, step_positions, step_bias, step_types, cache,
                                    uniform_type=ACTION_TOKEN_TYPE)
                cache.crop(-(cache.get_seq_length() - first))  # negative: tokens to drop (every version)
                return head.velocity(hidden)
        else:
            full_bias = attention_bias(token_types, token_types, 0, inputs.attention_mask)

            def velocity(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
                step_embeds = embeds.clone()
                step_embeds[action_slots] = head.embed_actions(x, t, inputs.dof_mask).reshape(-1, hidden_size).to(
                    embeds.dtype)
                hidden = self.model(step_embeds, positions, full_bias, token_types)
                return head.velocity(hidden[action_slots].reshape(batch, horizon, hidden_size))

        return integrate(noise, torch.linspace(0.0, 1.0, steps + 1, device=noise.device), velocity, rtc)
