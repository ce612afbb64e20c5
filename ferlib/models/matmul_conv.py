"""Convolutions on small feature maps computed as one matrix product, for backbones trained from scratch on a CPU.

TensorFlow's CPU gradient of a convolution with respect to its input (`Conv2DBackpropInput`) is up to 60 times slower
than the convolution itself when the maps are tiny and the channels many (a 3x3 convolution on 2x2 maps with 512
channels: 13 ms forward, 838 ms for that gradient; AMD EPYC family 25 model 1, AVX2, 2 cores), which is where
ResNet50V2 spends most of a training step at 32-48 px. The same numbers from slices, a concatenation and a matrix
product have fast gradients: ResNet50V2 at 32 px trained 7 times faster there (docs/results.md).
"""
from __future__ import annotations

import math

import keras
from keras import layers, ops

SMALL_MAP_PIXELS = 16  # a k x k convolution on maps up to this many pixels (4x4) becomes one matrix product


@keras.saving.register_keras_serializable(package="ferlib")  # training saves and reloads its models whole
class MatmulConv2D(layers.Conv2D):
    """A Conv2D (same weights, same numbers) that computes 1x1 convolutions, and k x k ones on small maps, as
    slices of the padded input concatenated and multiplied by the kernel; other cases are Conv2D's own."""

    def convolution_op(self, inputs, kernel):
        kh, kw, channels, filters = kernel.shape
        h, w = inputs.shape[1], inputs.shape[2]
        if (tuple(self.dilation_rate) != (1, 1) or self.data_format != "channels_last" or h is None or w is None
                or (kh * kw > 1 and h * w > SMALL_MAP_PIXELS)):
            return super().convolution_op(inputs, kernel)
        sh, sw = self.strides
        if self.padding == "same":  # TensorFlow's split: the odd pixel of padding goes after
            oh, ow = math.ceil(h / sh), math.ceil(w / sw)
            ph, pw = max((oh - 1) * sh + kh - h, 0), max((ow - 1) * sw + kw - w, 0)
            inputs = ops.pad(inputs, [[0, 0], [ph // 2, ph - ph // 2], [pw // 2, pw - pw // 2], [0, 0]])
        else:
            oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
        columns = [inputs[:, i:i + (oh - 1) * sh + 1:sh, j:j + (ow - 1) * sw + 1:sw, :]
                   for i in range(kh) for j in range(kw)]  # the kernel's (row, column, channel) order
        columns = columns[0] if len(columns) == 1 else ops.concatenate(columns, axis=-1)
        return ops.matmul(columns, ops.reshape(kernel, (kh * kw * channels, filters)))


def with_matmul_convolutions(model: keras.Model) -> keras.Model:
    """Return a copy of a functional `model` (its weights and names) whose Conv2D layers are MatmulConv2D."""
    def clone(layer: layers.Layer) -> layers.Layer:
        kind = MatmulConv2D if type(layer) is layers.Conv2D else type(layer)
        return kind.from_config(layer.get_config())

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy
