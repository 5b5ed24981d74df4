//! The CPU runner: executes a model's [`Program`] with the ndarray twins.

use crate::cpu;
use crate::error::{Error, Result};
use crate::model::{Op, Program, Region, TensorId};
use ndarray::{ArrayD, ArrayView1, ArrayViewD, IxDyn};

/// Scratch for one program: one slot per tensor it owns.
pub(crate) struct CpuProgram {
    pub(crate) program: Program,
    work: Vec<Option<ArrayD<f32>>>,
    flags: Vec<Option<Vec<u32>>>,
}

fn missing(program: &Program, id: TensorId) -> Error {
    Error::shape(
        "program",
        format!(
            "tensor {} is read before it is written",
            program.spec(id).name
        ),
    )
}

impl CpuProgram {
    pub(crate) fn new(program: Program) -> Self {
        let n = program.tensors.len();
        CpuProgram {
            program,
            work: vec![None; n],
            flags: vec![None; n],
        }
    }

    fn view<'a>(
        &'a self,
        id: TensorId,
        x: &'a ArrayViewD<'a, f32>,
        params: &'a [f32],
    ) -> Result<ArrayViewD<'a, f32>> {
        let spec = self.program.spec(id);
        let slice = |flat: &'a [f32], offset: usize| -> Result<ArrayViewD<'a, f32>> {
            let len: usize = spec.shape.iter().product();
            flat.get(offset..offset + len)
                .and_then(|s| ArrayViewD::from_shape(IxDyn(&spec.shape), s).ok())
                .ok_or_else(|| {
                    Error::shape(
                        "program",
                        format!("{} lies outside the parameters", spec.name),
                    )
                })
        };
        match spec.region {
            Region::Input => Ok(x.view()),
            Region::Param { offset } => slice(params, offset),
            Region::Work => self.work[id.0]
                .as_ref()
                .map(|a| a.view())
                .ok_or_else(|| missing(&self.program, id)),
            Region::Grad { .. } | Region::WorkU32 => Err(Error::shape(
                "program",
                format!("{} cannot be read as an input here", spec.name),
            )),
        }
    }

    fn store(&mut self, id: TensorId, value: ArrayD<f32>, grads: &mut [f32]) -> Result<()> {
        let spec = self.program.spec(id);
        if value.shape() != spec.shape.as_slice() {
            return Err(Error::shape(
                "program",
                format!(
                    "{} has shape {:?}, {:?} computed",
                    spec.name,
                    spec.shape,
                    value.shape()
                ),
            ));
        }
        match spec.region {
            Region::Work => {
                self.work[id.0] = Some(value);
                Ok(())
            }
            Region::Grad { offset } => {
                let out = grads.get_mut(offset..offset + value.len()).ok_or_else(|| {
                    Error::shape(
                        "program",
                        format!("{} lies outside the gradients", spec.name),
                    )
                })?;
                for (o, v) in out.iter_mut().zip(value.iter()) {
                    *o = *v;
                }
                Ok(())
            }
            _ => Err(Error::shape(
                "program",
                format!("{} is not writable", spec.name),
            )),
        }
    }

    /// Runs the program on input rows `x` with `labels`, writing gradients
    /// (if it has any) into `grads`; returns the batch's (loss sum, correct).
    pub(crate) fn run(
        &mut self,
        x: ArrayViewD<'_, f32>,
        labels: &[u32],
        params: &[f32],
        grads: &mut [f32],
    ) -> Result<(f32, u32)> {
        let ops = self.program.ops.clone();
        for op in &ops {
            match *op {
                Op::Matmul {
                    a,
                    b,
                    bias,
                    out,
                    opts,
                } => {
                    let value = {
                        let av = self.view(a, &x, params)?;
                        let bv = self.view(b, &x, params)?;
                        let biasv = match bias {
                            Some(id) => Some(self.view(id, &x, params)?),
                            None => None,
                        };
                        let bias1: Option<ArrayView1<f32>> = match &biasv {
                            Some(v) => Some(
                                v.view()
                                    .into_dimensionality()
                                    .map_err(|e| Error::shape("program", e))?,
                            ),
                            None => None,
                        };
                        cpu::matmul(&av, &bv, bias1, opts)?
                    };
                    self.store(out, value, grads)?;
                }
                Op::SoftmaxXent {
                    logits,
                    loss,
                    correct,
                    dlogits,
                } => {
                    let result = {
                        let lv = self.view(logits, &x, params)?;
                        if dlogits.is_some() {
                            cpu::softmax_xent::<f32, _, _>(&lv, labels)?
                        } else {
                            cpu::softmax_xent_eval::<f32, _, _>(&lv, labels)?
                        }
                    };
                    self.store(loss, result.loss.into_dyn(), grads)?;
                    self.flags[correct.0] = Some(result.correct.to_vec());
                    if let (Some(id), Some(d)) = (dlogits, result.dlogits) {
                        self.store(id, d.into_dyn(), grads)?;
                    }
                }
                Op::ActivationBiasBackward {
                    dh,
                    h,
                    dz,
                    db,
                    activation,
                } => {
                    let (dzv, dbv) = {
                        let dhv = self.view(dh, &x, params)?;
                        let hv = self.view(h, &x, params)?;
                        cpu::activation_bias_backward::<f32, _, _, _, _>(&dhv, &hv, activation)?
                    };
                    self.store(dz, dzv.into_dyn(), grads)?;
                    self.store(db, dbv.into_dyn(), grads)?;
                }
                Op::ColumnSum { x: src, sums } => {
                    let s = {
                        let v = self.view(src, &x, params)?;
                        cpu::column_sum::<f32, _, _>(&v)?
                    };
                    self.store(sums, s.into_dyn(), grads)?;
                }
            }
        }
        let loss = self.work[self.program.loss.0]
            .as_ref()
            .ok_or_else(|| missing(&self.program, self.program.loss))?;
        let correct = self.flags[self.program.correct.0]
            .as_ref()
            .ok_or_else(|| missing(&self.program, self.program.correct))?;
        let loss: Vec<f32> = loss.iter().copied().collect();
        cpu::loss_correct_sum(&loss, correct)
    }
}
