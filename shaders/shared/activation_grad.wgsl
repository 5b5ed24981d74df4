
// ------------------------------------------------ shared: shaders/shared/activation_grad.wgsl
// Appended by src/shaders.rs to every shader that differentiates an activation
// (WGSL has no includes; appending keeps the including file's line numbers).
// The including file declares `override ACTIVATION: u32` (0 identity,
// 1 sigmoid, 2 ReLU, as shapes::Activation). The derivative is written in
// terms of the stored output y = act(z), so the forward pass need not keep z;
// ReLU's derivative at 0 is 0 (as PyTorch), and y > 0 exactly when z > 0.
fn activation_grad(g: f32, y: f32) -> f32 {
    if (ACTIVATION == 1u) {
        return g * (y * (1.0 - y));
    }
    if (ACTIVATION == 2u) {
        return select(0.0, g, y > 0.0);
    }
    return g;
}
